"""alerts_core imports nothing outside the standard library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
sys.path.insert(0, {root!r})  # -I leaves the working directory off the path
before = set(sys.modules)
import alerts_core
loaded = sorted(set(sys.modules) - before)
print(json.dumps(loaded))
"""


def test_imports_in_an_isolated_interpreter_with_only_the_standard_library():
    # -I: isolated mode (no site-packages, no PYTHONPATH, no user site); -S: no site at all.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE.format(root=str(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(result.stdout)
    top_level = {name.split(".")[0] for name in loaded}
    foreign = sorted(top_level - set(sys.stdlib_module_names) - {"alerts_core"})
    assert foreign == [], f"alerts_core pulled in non-stdlib modules: {foreign}"
    assert "alerts_core.runner" in loaded
