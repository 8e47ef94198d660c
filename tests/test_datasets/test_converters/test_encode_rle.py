import json

import numpy as np
import pycocotools.mask as mask_utils

from mmvis_msts.datasets.converters import encode_rle


def test_encode_rle_is_json_ready_and_round_trips():
    mask = np.zeros((5, 7), dtype=bool)
    mask[1:4, 2:6] = True
    rle = encode_rle(mask)
    assert rle['size'] == [5, 7] and isinstance(rle['counts'], str)
    rle = json.loads(json.dumps(rle))
    np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), mask)
    assert mask_utils.area(rle) == 12
    assert mask_utils.toBbox(rle).tolist() == [2, 1, 4, 3]
