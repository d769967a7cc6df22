"""The reporting room: CyberTipline reports built from review decisions, their XML, the
submission client and its persisted state machine, bundling, and a local stand-in of the
reporting API."""
