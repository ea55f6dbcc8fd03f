"""The README's Python examples run, and the gradcheck report it shows is what the code prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.slow
def test_quick_python_example_runs():
    namespace: dict = {}
    exec(compile(blocks("python")[0], "README.md", "exec"), namespace)
    assert namespace["logits"].shape == (1, 1000)
    assert namespace["feats"].shape == (8, 64)
    assert set(namespace["grads"]) == set(namespace["tiny"].params)


def test_gradcheck_example_prints_what_the_readme_shows():
    code = next(b for b in blocks("python") if "check_op" in b)
    shown = re.search(r"```\n(gradcheck affine_forward.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue().strip() == shown.strip()
