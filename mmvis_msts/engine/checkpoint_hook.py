"""CheckpointHook that always leaves a loadable checkpoint behind."""
import os.path as osp
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from .atomic_files import write_text_atomic


@HOOKS.register_module()
class VISCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with crash-safe bookkeeping.

    Same arguments and behaviour as mmengine's hook, except for the order
    of the writes of one save, so that a kill at any moment leaves
    ``last_checkpoint`` naming a complete checkpoint:

    1. the checkpoint (written atomically by ``VISRunner.save_checkpoint``);
    2. ``last_checkpoint``, replaced atomically (mmengine rewrites it in
       place, and a kill can leave it empty);
    3. only then the checkpoint that ``max_keep_ckpts`` drops (mmengine
       deletes it before writing the new one, so with ``max_keep_ckpts=1``
       a kill during the save leaves no checkpoint at all).

    A kill between 2 and 3 leaves one checkpoint more than
    ``max_keep_ckpts``, which the resumed run does not delete.
    """

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        """Save the checkpoint of ``step``, then drop the oldest kept one.

        Args:
            runner (Runner): The runner.
            step (int): The epoch or iteration (1-based) of the checkpoint.
            meta (dict): Its ``meta`` entries (``epoch``, ``iter``).
        """
        stale = self._keep(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        write_text_atomic(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if stale is None:
            return
        if self.file_backend.isfile(stale):
            self.file_backend.remove(stale)
        elif self.file_backend.isdir(stale):  # deepspeed saves folders
            self.file_backend.rmtree(stale)

    def _keep(self, runner, step: int) -> Optional[str]:
        """Add ``step`` to the kept checkpoints.

        Args:
            runner (Runner): The runner; its message hub records the kept
                steps (``keep_ckpt_ids``), as mmengine's hook does.
            step (int): The step being saved.

        Returns:
            str, optional: The path of the checkpoint that drops out of the
            ``max_keep_ckpts`` newest, if any.
        """
        # the best and the last checkpoint of one step count once
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
            return None
        stale = None
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            stale = self.file_backend.join_path(
                self.out_dir,
                self.filename_tmpl.format(self.keep_ckpt_ids.popleft()))
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return stale
