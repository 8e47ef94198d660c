"""Import of the dataset converter scripts, shared by the converter tests
(``tools/`` is not a package)."""
import importlib.util
import os.path as osp
from types import ModuleType

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))


def load_cli(name: str) -> ModuleType:
    """Load ``tools/dataset_converters/<name>.py`` as a module.

    Args:
        name (str): Script name without ``.py``.

    Returns:
        ModuleType: The script's module (its ``main`` takes an argv list).
    """
    path = osp.join(REPO, 'tools', 'dataset_converters', f'{name}.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
