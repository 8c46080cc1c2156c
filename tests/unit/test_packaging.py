"""What a user who installs streamkit gets: the library, its pom for `streamkit kafka`, and
neither the example services nor their plugin."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_the_library_and_not_the_example_apps(tmp_path):
    # Built from a copy: a build writes its metadata beside the sources.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "*.egg-info", "build", "__pycache__", ".run", "streamkit-data"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "-w", str(tmp_path), str(src)], check=True)
    (wheel,) = tmp_path.glob("streamkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "streamkit/__init__.py" in names and "streamkit/data/kafka-pom.xml" in names
    assert not [n for n in names if n.startswith(("apps/", "tests/", "bench/"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "streamkit.plugins" not in text and "streamkit = streamkit.cli:main" in text
