"""Access to the saved-page fixtures in tests/fixtures/fragment."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fragment"
BASE = "https://fragment.com"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")
