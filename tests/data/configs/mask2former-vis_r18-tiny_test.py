# Test-only config: the tiny Mask2Former-VIS anchor of the main-job benchmark
# (mmdet's Mask2FormerVideo on the tiny MS-STS config's bases) run for 2
# iterations on CPU, on a small synthetic set that the tool tests generate
# into ./data/synthetic_vis (relative to the working directory).
_base_ = ('../../../configs/benchmarks/'
          'mask2former-vis_r18-tiny_1xb4-2k_synthetic.py')

# one clip per batch, data loaded in the main process
train_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader

max_iters = 2
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=-1))
log_processor = dict(window_size=1)
randomness = dict(seed=0)
