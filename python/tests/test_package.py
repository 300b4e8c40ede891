"""The wheel: import, version, console scripts on PATH running the real programs."""
import shutil
import subprocess
import sys

import netloom


def test_version_matches_cli():
    exe = shutil.which("netloom")
    assert exe is not None and exe.startswith(sys.prefix)
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"netloom {netloom.__version__}"


def test_cli_usage_error_exit_code():
    out = subprocess.run(["netloom", "no-such-command"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "no-such-command" in out.stderr


def test_mtr_packet_speaks_the_protocol():
    exe = shutil.which("mtr-packet")
    assert exe is not None and exe.startswith(sys.prefix)
    out = subprocess.run(
        [exe], input="7 check-support feature send-probe\n8 check-support feature version\n",
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "7 feature-support support ok" in lines
    assert any(line.startswith("8 feature-support support ") for line in lines)


def test_typed():
    import importlib.resources

    assert (importlib.resources.files("netloom") / "py.typed").is_file()
