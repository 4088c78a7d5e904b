"""The README's fenced code blocks, read in one place: ``tests/test_readme.py`` runs them in the
test suite, and the wheel check (``.ci/wheel_check.py``) runs the Python ones against the
installed wheel, as a script: ``python -P tests/readme_snippets.py README.md`` runs every
```python block of README.md in the current folder. Standard library only, so that it runs in
an environment that holds nothing but the wheel and its dependencies."""

from __future__ import annotations

import re
import sys
from pathlib import Path


def fenced(readme: Path, language: str) -> list[str]:
    """The bodies of the README's ```language blocks, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", Path(readme).read_text(),
                      flags=re.S | re.M)


def run_python_blocks(readme: Path) -> int:
    """Run every ```python block, in order and in one namespace, as a reader would type them
    into one session; return how many ran. Files they write land in the current folder."""
    blocks = fenced(readme, "python")
    if not blocks:
        raise ValueError(f"{readme} has no python examples")
    namespace: dict = {"__name__": "__readme__"}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"README.md python block {number}", "exec"), namespace)
    return len(blocks)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -P tests/readme_snippets.py README.md")
    ran = run_python_blocks(Path(sys.argv[1]))
    import lsalsa

    print(f"{ran} README python blocks ran with lsalsa {lsalsa.__version__} from "
          f"{Path(lsalsa.__file__).parent}")
