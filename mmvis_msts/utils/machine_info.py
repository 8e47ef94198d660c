"""What machine a benchmark ran on, for its result files."""
import platform
import subprocess


def cpu_model() -> str:
    """``Model name`` of lscpu (falls back to the platform string)."""
    try:
        out = subprocess.run(['lscpu'],
                             capture_output=True,
                             text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    for line in out.splitlines():
        if line.startswith('Model name:'):
            return line.split(':', 1)[1].strip()
    return platform.machine()
