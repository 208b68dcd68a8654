"""The package's floors: papers <- shared machinery <- chapters, arrows pointing down only.

Every import of every ``covidlab`` module is read from its syntax tree, the ones inside
functions and ``if TYPE_CHECKING:`` blocks included, so a cycle cannot hide in a function body.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "covidlab"

#: The plain-data module the papers may read (heads and backbone input sizes, no TensorFlow).
PLAIN_DATA = "covidlab.architectures"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _covidlab_imports(path: Path) -> set[str]:
    """Every covidlab module ``path`` imports, anywhere in the file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # ``from covidlab import papers`` imports the module covidlab.papers
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "covidlab" or name.startswith("covidlab.")}


def _modules() -> dict[str, set[str]]:
    existing = {_module_name(path) for path in PACKAGE.rglob("*.py")}
    return {
        _module_name(path): {name for name in _covidlab_imports(path) if name in existing}
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _floor(module: str) -> str:
    if module == "covidlab.papers" or module.startswith("covidlab.papers."):
        return "papers"
    if module == "covidlab.chapters" or module.startswith("covidlab.chapters."):
        return "chapters"
    return "shared"


MODULES = _modules()


def test_the_walk_sees_function_local_imports():
    # chapters/covidx_net.py imports covidlab.profiles only inside functions
    assert "covidlab.profiles" in MODULES["covidlab.chapters.covidx_net"]
    assert {"covidlab.papers", "covidlab.chapters"} <= set(MODULES)


@pytest.mark.parametrize("module", [m for m in MODULES if _floor(m) == "papers"])
def test_papers_import_only_papers_and_the_plain_data_module(module):
    wrong = {name for name in MODULES[module] if _floor(name) != "papers" and name != PLAIN_DATA}
    assert not wrong, f"{module} imports {sorted(wrong)}: the papers package is facts only"


def test_the_plain_data_module_imports_nothing_of_covidlab():
    assert MODULES[PLAIN_DATA] == set()


@pytest.mark.parametrize("module", [m for m in MODULES if _floor(m) == "shared"])
def test_shared_modules_never_import_chapters(module):
    wrong = {name for name in MODULES[module] if _floor(name) == "chapters"}
    assert not wrong, f"{module} imports the chapter helpers {sorted(wrong)}"


def test_train_takes_a_run_config_without_importing_profiles():
    assert "covidlab.profiles" not in MODULES["covidlab.train"]


def test_facts_profiles_and_metrics_load_without_tensorflow():
    code = (
        "import sys\n"
        "import covidlab.papers, covidlab.profiles, covidlab.metrics\n"
        "from covidlab import papers\n"
        "for key in papers.ALL:\n"
        "    papers.get(key)\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
