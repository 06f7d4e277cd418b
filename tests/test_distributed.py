"""Training on several processes (torch.distributed, gloo on CPU) equals one process on the same blocks."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from napari_geoseg.data import synthetic_seismic
from napari_geoseg.train import Trainer

SHAPE, ITERATIONS = (32, 32, 32), 4


def train_rank(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        volume = synthetic_seismic(SHAPE, seed=1)
        trainer = Trainer(volume.image, volume.labels, iterations=ITERATIONS, block=16, seed=3, distributed=True)
        model = trainer.train()
        if rank == 0:
            torch.save([p.detach().clone() for p in model.net.parameters()], out)
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_two_gloo_processes_train_as_one_process_with_two_blocks_per_step(tmp_path):
    out = str(tmp_path / "weights.pt")
    mp.spawn(train_rank, args=(2, f"file://{tmp_path / 'rendezvous'}", out), nprocs=2, join=True)
    distributed = torch.load(out)
    volume = synthetic_seismic(SHAPE, seed=1)
    single = Trainer(volume.image, volume.labels, iterations=ITERATIONS, block=16, seed=3, blocks_per_step=2)
    reference = [p.detach() for p in single.train().net.parameters()]
    for a, b in zip(distributed, reference):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # And it is not simply one block per step.
    one = Trainer(volume.image, volume.labels, iterations=ITERATIONS, block=16, seed=3).train()
    assert any(not torch.allclose(a, p.detach(), atol=1e-5) for a, p in zip(distributed, one.net.parameters()))


def test_distributed_needs_a_process_group():
    from napari_geoseg.errors import InputError

    volume = synthetic_seismic((16, 16, 16), seed=1)
    with pytest.raises(InputError, match="torchrun"):
        Trainer(volume.image, volume.labels, iterations=2, distributed=True)
