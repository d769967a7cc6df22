"""Benign synthetic media for the demo and the tests: gradients, shapes and a moving pattern.

Nothing here is, or resembles, real content: every pixel comes from a formula, so the demo
and the test-suite need nothing from outside the repository.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from argon2 import PasswordHasher
from numpy.typing import NDArray
from PIL import Image, ImageDraw
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.auth.users import (
    UserNotFound,
    check_roles,
    create_user,
    enable_user,
    get_user,
    set_password,
)
from vigil.banks import NewEntry, add_entries, create_bank, delete_bank
from vigil.config import Settings
from vigil.media import MediaType
from vigil.pipeline.hashing import HashOptions, hash_files
from vigil.pipeline.matching import BankMatcher
from vigil.pipeline.recording import HashRecorder
from vigil.pipeline.scan import ScanResult, ScanSummary, scan_files, scan_options
from vigil.reporting.builder import make_submitter
from vigil.reporting.drafts import DraftRules
from vigil.reporting.service import Approver, approve
from vigil.review import Reviewer, claim_next, confirm
from vigil.store import AppUser, Bank, LegalRequest, Officer, Report, open_database, utcnow
from vigil.vault.media import media_store


def synthetic_image(width: int, height: int, seed: int) -> Image.Image:
    """A structured RGB picture (gradient, rings, rectangles) that PDQ hashes at high quality."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(0.2, 0.8, 2) * (width, height)
    rings = np.sin(np.hypot(x - cx, y - cy) / rng.uniform(6, 20) * max(width, height) / 256)
    base = np.stack(
        [
            127 + 100 * rings,
            255 * x / max(width - 1, 1),
            255 * y / max(height - 1, 1),
        ],
        axis=-1,
    )
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, x1 = sorted(rng.integers(0, width, 2).tolist())
        y0, y1 = sorted(rng.integers(0, height, 2).tolist())
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.rectangle((x0, y0, x1 + 1, y1 + 1), fill=colour)
    return image


def synthetic_frames(
    width: int, height: int, count: int, seed: int = 1001
) -> list[NDArray[np.uint8]]:
    """A slow diagonal pan (1/80 of the frame a step, back and forth) across a larger
    synthetic picture: consecutive frames hash alike, distant ones do not, and the frames
    survive re-encoding within a few PDQ bits."""
    canvas = np.asarray(varied_image(seed, width * 2, height * 2))
    frames = []
    for index in range(count):
        step = index % 160 if index % 160 < 80 else 160 - index % 160
        left, top = step * width // 80, step * height // 160
        frames.append(np.ascontiguousarray(canvas[top : top + height, left : left + width]))
    return frames


def write_video(
    path: Path,
    frames: list[NDArray[np.uint8]],
    *,
    fps: int = 10,
    codec: str = "libx264",
    bit_rate: int | None = None,
) -> Path:
    """Encode frames with PyAV into the container named by the file extension."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        assert isinstance(stream, av.VideoStream)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if bit_rate:
            stream.bit_rate = bit_rate
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def varied_image(seed: int, width: int = 480, height: int = 360) -> Image.Image:
    """One of many unrelated pictures: random waves, ramps and shapes (pairwise PDQ distance
    of 200 of them is above 90 bits, far from the match threshold of 31)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * x + np.sin(angle) * y) / max(width, height)
    layers = []
    for _ in range(3):
        fx, fy = rng.uniform(1, 12, 2) * 2 * np.pi / np.array([width, height])
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(fx * x + fy * y + phase)
        layers.append(127 + 60 * wave + 60 * ramp * rng.choice([-1, 1]))
    image = Image.fromarray(np.clip(np.stack(layers, -1), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 12))):
        x0, x1 = sorted(rng.integers(0, width, 2).tolist())
        y0, y1 = sorted(rng.integers(0, height, 2).tolist())
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.rectangle((x0, y0, x1 + 1, y1 + 1), fill=colour)
        elif shape == 1:
            draw.ellipse((x0, y0, x1 + 1, y1 + 1), fill=colour)
        else:
            corners = [
                (int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(3)
            ]
            draw.polygon(corners, fill=colour)
    return image


def _resize(image: Image.Image) -> Image.Image:
    return image.resize((image.width * 2 // 3, image.height * 2 // 3), Image.Resampling.LANCZOS)


def _greyscale(image: Image.Image) -> Image.Image:
    return image.convert("L")


def _crop(image: Image.Image) -> Image.Image:
    dx, dy = image.width // 25, image.height // 25
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def _pad(image: Image.Image) -> Image.Image:
    border = image.width // 8
    canvas = Image.new("RGB", (image.width + 2 * border, image.height + 2 * border), (0, 0, 0))
    canvas.paste(image, (border, border))
    return canvas


ALTERATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "resized": _resize,
    "recompressed": lambda image: image,  # saved below at a low JPEG quality
    "greyscale": _greyscale,
    "cropped": _crop,
    "padded": _pad,
    "rotated": lambda image: image.transpose(Image.Transpose.ROTATE_90),
    "mirrored": lambda image: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
}
"""The edits a re-upload typically carries, applied to the demo's known pictures."""


@dataclass(frozen=True)
class DemoSet:
    """The demo's files: what goes in the bank, and the mixed folder to scan."""

    known: list[Path]
    known_video: Path
    uploads: Path
    altered: dict[str, str]
    """Upload file name -> the alteration it carries (the rest of the uploads are unrelated)."""


def make_demo_set(folder: Path, *, known: int = 50, unrelated: int = 150) -> DemoSet:
    """Write `known` pictures for a bank, and an uploads folder mixing an altered copy of each
    with `unrelated` other pictures, a re-encoded copy of a known video and a broken file."""
    known_dir, uploads = folder / "known", folder / "uploads"
    for directory in (known_dir, uploads):
        directory.mkdir(parents=True, exist_ok=True)
    names = list(ALTERATIONS)
    known_paths: list[Path] = []
    altered: dict[str, str] = {}
    for seed in range(known):
        image = varied_image(seed)
        original = known_dir / f"known-{seed:03d}.png"
        image.save(original)
        known_paths.append(original)
        alteration = names[seed % len(names)]
        copy = ALTERATIONS[alteration](image)
        name = f"upload-{seed:03d}.jpg"
        copy.save(uploads / name, quality=30 if alteration == "recompressed" else 88)
        altered[name] = alteration
    for seed in range(known, known + unrelated):
        varied_image(seed).save(uploads / f"upload-{seed:03d}.jpg", quality=88)
    frames = synthetic_frames(320, 240, 30)
    known_video = write_video(known_dir / "clip.mp4", frames, fps=10)
    write_video(uploads / "clip-reencoded.webm", frames, fps=10, codec="libvpx", bit_rate=2_000_000)
    broken = uploads / "broken.jpg"
    broken.write_bytes((uploads / "upload-000.jpg").read_bytes()[:2000])
    return DemoSet(known_paths, known_video, uploads, altered)


DEMO_BANK = "demo-known"
DEMO_SUPPRESS_BANK = "demo-false-positives"


@dataclass
class DemoReport:
    """What the demo did and found, for the command to print."""

    demo: DemoSet
    results: list[ScanResult]
    summary: ScanSummary
    database_url: str

    def recall_by_alteration(self) -> dict[str, tuple[int, int]]:
        """Alteration -> (copies matched or suppressed, copies)."""
        found: dict[str, list[int]] = {name: [0, 0] for name in ALTERATIONS}
        for result in self.results:
            alteration = self.demo.altered.get(Path(result.record.path).name)
            if alteration is None:
                continue
            outcome = result.outcome
            found[alteration][1] += 1
            found[alteration][0] += bool(outcome.matches or outcome.suppressed)
        return {name: (hit, total) for name, (hit, total) in found.items()}

    def false_matches(self) -> list[ScanResult]:
        """Unrelated uploads that matched anything (there should be none)."""
        return [
            r
            for r in self.results
            if Path(r.record.path).name not in self.demo.altered
            and r.record.media_type is MediaType.IMAGE
            and r.outcome.matches
        ]


def run_demo(settings: Settings, *, workers: int = 1) -> DemoReport:
    """Vigil's main job end to end on synthetic media: bank 50 known pictures and a video,
    scan a folder of altered copies mixed with unrelated pictures, record everything; the
    matches wait in the review queue, their files kept (encrypted) for the console."""
    folder = settings.home / "demo"
    shutil.rmtree(folder, ignore_errors=True)
    demo = make_demo_set(folder)
    database = open_database(settings)
    limits = settings.media_limits
    known = list(
        hash_files([*demo.known, demo.known_video], limits, HashOptions(fast_decode=False))
    )
    with database.session() as session:
        for name in (DEMO_BANK, DEMO_SUPPRESS_BANK):
            if session.scalar(select(Bank.id).where(Bank.name == name)) is not None:
                delete_bank(session, name)
        create_bank(
            session,
            DEMO_BANK,
            trust="verified",
            description="Synthetic pictures and a video the demo generated.",
            default_classification="synthetic-demo",
        )
        create_bank(
            session,
            DEMO_SUPPRESS_BANK,
            kind="suppress",
            description="Known false positives: a hit here cancels matches to the same file.",
        )
        add_entries(
            session,
            DEMO_BANK,
            [
                NewEntry(name, signal.value, note=Path(record.path).name)
                for record in known
                for name, signal in record.signals.items()
                if name in ("md5", "pdq", "vpdq")
            ],
        )
        # One known picture is declared a false positive: its copy is found but suppressed.
        suppressed = known[6].signals["pdq"]
        add_entries(session, DEMO_SUPPRESS_BANK, [NewEntry("pdq", suppressed.value)])
    matcher = BankMatcher.from_database(database, cache_dir=settings.index_cache_dir)
    options = scan_options(
        fast_decode=settings.fast_decode, vpdq_seconds_per_hash=settings.vpdq_seconds_per_hash
    )
    recorder = HashRecorder(database, media=media_store(settings))
    summary = ScanSummary()
    results = []
    uploads = sorted(demo.uploads.iterdir())
    for result in scan_files(uploads, limits, options, matcher, recorder, workers=workers):
        summary.add(result)
        results.append(result)
    recorder.close()
    return DemoReport(demo, results, summary, settings.effective_database_url)


DEMO_REVIEWER = "demo-reviewer"


DEMO_REVIEWER_ROLES = ("admin", "lead", "reviewer", "legal")
"""`legal` too: with `demo-legal`, two people work the legal desk (an emergency's second
verification must come from another user than the first)."""


def _demo_user(
    session: Session,
    username: str,
    password: str,
    roles: tuple[str, ...],
    display_name: str,
    email: str | None = None,
) -> AppUser:
    """A demo console user created, or reset (password, enabled, roles added)."""
    try:
        user = set_password(session, username, password)
        enable_user(session, username)
        if not set(roles) <= set(user.roles):
            user.roles = check_roles([*user.roles, *roles])
        user.email = user.email or email
    except UserNotFound:
        user = create_user(
            session, username, password, roles, display_name=display_name, email=email
        )
    session.flush()
    return user


def demo_reviewer(settings: Settings) -> tuple[str, str]:
    """A console account for the demo (reviewer, lead, admin and legal) with a fresh random
    password, created or reset: returns the username and the password, shown once."""
    password = secrets.token_urlsafe(12)
    database = open_database(settings)
    try:
        with database.session() as session:
            _demo_user(session, DEMO_REVIEWER, password, DEMO_REVIEWER_ROLES, "Demo reviewer")
    finally:
        database.dispose()
    return DEMO_REVIEWER, password


DEMO_SANDBOX_USER = "demo"
DEMO_REPORTER = {
    "report_person_email": "safety@demo-platform.invalid",
    "report_platform": "Vigil demo platform",
    "report_company_template": "Demo only: no legal process is served on this platform.",
}


@dataclass(frozen=True)
class DemoSubmission:
    """What the demo's report came to at the local reporting stand-in."""

    report_id: int
    outcome: str
    remote_report_id: str | None
    files: int
    sandbox_url: str


def demo_settings(settings: Settings, sandbox_url: str, password: str) -> Settings:
    """The demo's settings: reports go to the local stand-in, with a demo reporter."""
    defaults = {
        key: value for key, value in DEMO_REPORTER.items() if getattr(settings, key) is None
    }
    return settings.model_copy(
        update={
            **defaults,
            "cybertip_environment": "test",
            "cybertip_test_url": sandbox_url,
            "cybertip_test_username": DEMO_SANDBOX_USER,
            "cybertip_test_password": SecretStr(password),
            # Clearly fake subscriber records for any account (the legal desk's productions).
            "account_data_synthetic": True,
        }
    )


def submit_demo_report(settings: Settings, reviewer: str) -> DemoSubmission | None:
    """Confirm one waiting task as `reviewer` (who views nothing: the report says so),
    approve the report and send it to the reporting stand-in that `settings` point at."""
    database = open_database(settings)
    try:
        with database.session() as session:
            user = get_user(session, reviewer)
            me = Reviewer(user.id, frozenset(user.roles))
            task = claim_next(session, me, lease=timedelta(minutes=5))
            if task is None:
                return None
            confirm(session, task.id, me, industry="B2", rules=DraftRules())
            [report] = session.scalars(
                select(Report).where(Report.status == "draft").order_by(Report.id.desc()).limit(1)
            ).all()
            approve(session, report.id, Approver(user.id, me.roles), environment="test")
            report_id = report.id
        result = make_submitter(settings, database, media_store(settings)).run(report_id)
        with database.session() as session:
            sent = session.get(Report, report_id)
            assert sent is not None
            return DemoSubmission(
                report_id,
                result.outcome,
                sent.remote_report_id,
                len(sent.files),
                settings.cybertip_test_url,
            )
    finally:
        database.dispose()


# --- The legal desk ----------------------------------------------------------------------

DEMO_LEGAL = "demo-legal"
DEMO_LEGAL_ROLES = ("legal", "lead")
DEMO_AGENCY_DOMAIN = "police.example.gov"
DEMO_AGENCY = "Example County Police (demo)"
DEMO_OFFICER = f"officer@{DEMO_AGENCY_DOMAIN}"
DEMO_ACCOUNT = "demo-account-0001"
"""The demo's uploads carry no account ids, so the demo subpoena names a made-up account
(the synthetic connector answers for any account with clearly fake records)."""
DEMO_CASE = "DEMO-2026-0001"


@dataclass(frozen=True)
class LegalDemo:
    """The legal desk's demo: who works it, the portal's officer, the subpoena waiting."""

    legal_user: str
    legal_password: str
    second_user: str
    officer_email: str
    officer_password: str
    request_number: str
    filed: bool
    """True when the subpoena was filed by this run (False: one from an earlier run)."""


def demo_subpoena_pdf() -> bytes:
    """A one-page PDF that says plainly it is a demo, not legal process."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.multi_cell(0, 8, "DEMO ONLY - NOT LEGAL PROCESS", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(
        0,
        6,
        f"Synthetic subpoena for the Vigil demo. Case {DEMO_CASE}, {DEMO_AGENCY}.\n"
        f"Asks for basic subscriber information (18 U.S.C. 2703(c)(2)) of the made-up account"
        f" {DEMO_ACCOUNT}. Nothing here names a real person, agency or account.",
    )
    return bytes(pdf.output())


def _demo_officer(session: Session, password: str, now: datetime) -> Officer:
    """The demo's portal officer, active and confirmed, with a fresh password (created or
    reset: no confirmation mail is needed for made-up seed data)."""
    hashed = PasswordHasher().hash(password)
    officer = session.scalars(select(Officer).where(Officer.email == DEMO_OFFICER)).one_or_none()
    if officer is None:
        officer = Officer(
            email=DEMO_OFFICER,
            domain=DEMO_AGENCY_DOMAIN,
            name="Officer Olivia Example (demo)",
            agency=DEMO_AGENCY,
            title="Detective (demo)",
            phone="+1-555-0100",
            password_hash=hashed,
            status="active",
            confirmed_at=now,
            created=now,
        )
        session.add(officer)
    else:
        officer.password_hash = hashed
        officer.status = "active"
        officer.confirm_hash = None
        officer.confirm_expires = None
        officer.confirmed_at = officer.confirmed_at or now
    session.flush()
    return officer


def seed_legal_demo(settings: Settings, *, now: datetime | None = None) -> LegalDemo:
    """The legal desk's demo, created or refreshed (run it again: nothing breaks): a legal
    user `demo-legal` (legal, lead) with a fresh password, `demo-reviewer` on the desk too
    (see `demo_reviewer`), the agency domain `police.example.gov` on the allowlist, an
    active officer with a fresh password, and one subpoena filed through the portal for a
    made-up account (filed once; later runs keep it)."""
    from vigil.legal.desk import DeskUser, reference
    from vigil.legal.intake import NewRequest, NewTarget, file_request
    from vigil.legal.portal import decide_domain
    from vigil.vault.items import open_vault

    now = now or utcnow()
    legal_password = secrets.token_urlsafe(12)
    officer_password = secrets.token_urlsafe(12)
    database = open_database(settings)
    try:
        with database.session() as session:
            legal = _demo_user(
                session,
                DEMO_LEGAL,
                legal_password,
                DEMO_LEGAL_ROLES,
                "Demo legal lead",
                email="demo-legal@demo-platform.invalid",
            )
            desk = DeskUser.of(legal)
            decide_domain(
                session,
                DEMO_AGENCY_DOMAIN,
                allow=True,
                user=desk,
                now=now,
                agency=DEMO_AGENCY,
                note="Demo only: a made-up agency on a reserved example domain.",
            )
            officer = _demo_officer(session, officer_password, now)
            request = session.scalars(
                select(LegalRequest)
                .where(LegalRequest.officer_id == officer.id, LegalRequest.case_number == DEMO_CASE)
                .order_by(LegalRequest.id)
                .limit(1)
            ).first()
            filed = request is None
            if request is None:
                request = file_request(
                    session,
                    open_vault(settings),
                    NewRequest(
                        kind="subpoena",
                        requester_name=officer.name,
                        agency=DEMO_AGENCY,
                        targets=[NewTarget("account", DEMO_ACCOUNT)],
                        case_number=DEMO_CASE,
                        document_reference="DEMO-SUBPOENA-1",
                        jurisdiction="Example County Court (demo)",
                        issued_on=now - timedelta(days=1),
                        records_from=now - timedelta(days=90),
                        records_to=now,
                        description="Basic subscriber information of the account (demo only).",
                    ),
                    channel="portal",
                    created_by=f"officer:{officer.email}",
                    settings=settings,
                    now=now,
                    officer=officer,
                    document=demo_subpoena_pdf(),
                    document_name="demo-subpoena.pdf",
                )
            number = reference(request)
    finally:
        database.dispose()
    return LegalDemo(
        legal_user=DEMO_LEGAL,
        legal_password=legal_password,
        second_user=DEMO_REVIEWER,
        officer_email=DEMO_OFFICER,
        officer_password=officer_password,
        request_number=number,
        filed=filed,
    )
