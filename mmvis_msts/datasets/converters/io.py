"""Json reading and writing for the converters."""
import json
import os
import os.path as osp
from typing import Any


def load_json(path: str) -> Any:
    """Load a json file, naming it in the error if it is missing or bad.

    Args:
        path (str): The file.

    Returns:
        Any: The parsed content.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist')
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f'{path} is not valid json: {error}') from None


def save_json(obj: Any, path: str) -> None:
    """Write ``obj`` to ``path`` as json, creating the folder.

    Args:
        obj (Any): Json-serialisable content.
        path (str): Output file.
    """
    folder = osp.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f)
