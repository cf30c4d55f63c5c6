"""Two gloo processes on CPU: Barlow Twins', VICReg's and SupCon's global-batch statistics and gradients equal one
process on the concatenated batch; BYOL's target update is identical on every rank."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from simclr_core.methods.barlowtwins import barlow_twins_loss, global_barlow_twins
from simclr_core.methods.byol import BYOL
from simclr_core.methods.supcon import global_supcon, supcon_loss
from simclr_core.methods.vicreg import global_vicreg, vicreg_loss

WORLD = 2
B = 6  # images per rank
D_IN, D = 10, 8
TEMPERATURE = 0.3


def _batch(n_views: int) -> torch.Tensor:
    """The global batch (n_views, WORLD * B, D_IN), the same in every process."""
    g = torch.Generator().manual_seed(200 + n_views)
    centres = torch.randn(WORLD * B, D_IN, generator=g)
    return torch.stack([centres + 0.7 * torch.randn(WORLD * B, D_IN, generator=g) for _ in range(n_views)])


def _labels() -> torch.Tensor:
    return torch.arange(WORLD * B) % 4


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D_IN, 16), nn.ReLU(), nn.Linear(16, D))


def _loss(name: str, z: torch.Tensor, labels: torch.Tensor, n_views: int, distributed: bool) -> torch.Tensor:
    if name == "barlowtwins":
        return (global_barlow_twins if distributed else barlow_twins_loss)(z, n_views)[0]
    if name == "vicreg":
        return (global_vicreg if distributed else vicreg_loss)(z, n_views)[0]
    return (global_supcon if distributed else supcon_loss)(z, labels, TEMPERATURE, n_views)


CASES = [(name, v) for name in ("barlowtwins", "vicreg", "supcon") for v in (2, 3)]


def _single(name: str, n_views: int) -> dict[str, object]:
    model = _model()
    loss = _loss(name, model(_batch(n_views).reshape(-1, D_IN)), _labels(), n_views, distributed=False)
    loss.backward()
    return {"loss": loss.detach(), "param_grads": [p.grad.clone() for p in model.parameters()]}


class TinyNet(nn.Module):
    """(h, z) like model.SimCLRNet, small enough for a test."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(D_IN, 16), nn.ReLU())
        self.head = nn.Linear(16, D)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)
        return h, self.head(h)


class OnlineAndByol(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = TinyNet()
        self.objective = BYOL(self.net, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, z = self.net(x)
        return self.objective(z, x, None, 2, 1.0)[0]


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    results: dict[str, object] = {}
    labels = _labels()[rank * B : (rank + 1) * B]
    for name, n_views in CASES:
        ddp = nn.parallel.DistributedDataParallel(_model())
        x_local = _batch(n_views)[:, rank * B : (rank + 1) * B].reshape(-1, D_IN)
        loss = _loss(name, ddp(x_local), labels, n_views, distributed=True)
        loss.backward()  # DDP averages the parameter gradients over the ranks here
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        results[f"{name}/{n_views}"] = {
            "loss_mean": mean / WORLD,
            "param_grads": [p.grad.clone() for p in ddp.parameters()],
        }
    # BYOL: each rank trains on its own images; DDP keeps the online weights equal, so the targets stay equal.
    module = OnlineAndByol()
    ddp = nn.parallel.DistributedDataParallel(module)
    opt = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=0.5)
    start = [p.clone() for p in module.objective.target.parameters()]
    for step in range(3):
        g = torch.Generator().manual_seed(1000 * rank + step)
        ddp(torch.randn(2 * B, D_IN, generator=g)).backward()
        opt.step()
        opt.zero_grad()
        module.objective.after_step(module.net, (step + 1) / 3 * 0.5)
    results["byol"] = {
        "target": [p.detach().clone() for p in module.objective.target.parameters()],
        "start": start,
        "online": [p.detach().clone() for p in module.net.parameters()],
    }
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    dist.barrier()
    os._exit(0)  # as in test_distributed: no gloo teardown race after the work is done


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("ddp_methods")
    mp.spawn(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True)
    return [torch.load(tmp / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize(("name", "n_views"), CASES)
def test_global_batch_statistics_equal_one_process(ranks: list[dict], name: str, n_views: int) -> None:
    ref = _single(name, n_views)
    for results in ranks:
        got = results[f"{name}/{n_views}"]
        torch.testing.assert_close(got["loss_mean"], ref["loss"], rtol=1e-5, atol=1e-6)
        for p_got, p_ref in zip(got["param_grads"], ref["param_grads"], strict=True):
            torch.testing.assert_close(p_got, p_ref, rtol=1e-4, atol=1e-6)


def test_local_statistics_would_differ(ranks: list[dict]) -> None:
    """Guards the test: per-rank Barlow Twins / VICReg (no gather) are not the global batch's loss."""
    x = _batch(2)
    model = _model()
    halves = [model(x[:, r * B : (r + 1) * B].reshape(-1, D_IN)) for r in range(WORLD)]
    for fn in (barlow_twins_loss, vicreg_loss):
        local = torch.stack([fn(z)[0] for z in halves]).mean()
        assert not torch.allclose(local, fn(model(x.reshape(-1, D_IN)))[0], rtol=1e-3)


def test_byol_target_update_is_identical_on_every_rank(ranks: list[dict]) -> None:
    first, second = (r["byol"] for r in ranks)
    for a, b in zip(first["online"], second["online"], strict=True):
        assert torch.equal(a, b)
    for a, b in zip(first["target"], second["target"], strict=True):
        assert torch.equal(a, b)  # bit for bit, not just close
    assert any(not torch.equal(a, s) for a, s in zip(first["target"], first["start"], strict=True))
