"""The README's main job: `notifier demo` on embedded defaults exits 0 and prints the table."""

import os
import subprocess
import sys


def test_demo_on_embedded_defaults(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env["NOTIFIER_HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "notifier.cli", "demo", "--users", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broker filesystem://" in result.stderr and "sqlite" in result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("policy"))
    assert "sms delivered" in header and "as expected" in header
    rows = {
        line.split()[0]: line.split()[1:]
        for line in lines
        if line.startswith(("supplement", "concurrent"))
    }
    assert rows["supplement"][0] == rows["supplement"][-1] == "8"  # 8 messages, 8 as expected
    assert rows["concurrent"][0] == rows["concurrent"][-1] == "8"
    assert "every message reached the state its device implies" in result.stdout
