"""Two gloo processes on CPU: gathered loss and DDP gradients equal the single-process computation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from simclr_core.distributed import gather_views, global_info_nce
from simclr_core.loss import info_nce

WORLD = 2
B = 6  # images per rank
D_IN, D = 10, 8
TEMPERATURE = 0.3


def _batch(n_views: int) -> torch.Tensor:
    """The global batch: (n_views, WORLD * B, D_IN), view v of image i at [v, i]; the same in every process."""
    g = torch.Generator().manual_seed(100 + n_views)
    centres = torch.randn(WORLD * B, D_IN, generator=g)
    return torch.stack([centres + 0.7 * torch.randn(WORLD * B, D_IN, generator=g) for _ in range(n_views)])


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D_IN, 16), nn.ReLU(), nn.Linear(16, D))


def _single(n_views: int) -> dict[str, object]:
    """The reference: one process, the whole batch of WORLD * B images."""
    model = _model()
    x = _batch(n_views).reshape(-1, D_IN)
    z = model(x)
    z.retain_grad()
    loss, metrics = info_nce(z, TEMPERATURE, n_views)
    loss.backward()
    return {
        "loss": loss.detach(),
        "metrics": {k: v for k, v in metrics.items()},
        "z": z.detach(),
        "z_grad": z.grad,
        "param_grads": [p.grad.clone() for p in model.parameters()],
    }


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    results: dict[str, object] = {}
    for n_views in (2, 3):
        x_local = _batch(n_views)[:, rank * B : (rank + 1) * B].reshape(-1, D_IN)  # this rank's images, view-major
        for mode in ("local_anchors", "full_gather"):
            ddp = nn.parallel.DistributedDataParallel(_model())
            z = ddp(x_local)
            z.retain_grad()
            if mode == "local_anchors":
                loss, metrics = global_info_nce(z, TEMPERATURE, n_views)
            else:
                loss, metrics = info_nce(gather_views(z, n_views), TEMPERATURE, n_views)
            loss.backward()  # DDP averages the parameter gradients over the ranks here
            reduced = torch.stack([loss.detach(), *metrics.values()])
            dist.all_reduce(reduced)
            results[f"{n_views}/{mode}"] = {
                "gathered": gather_views(z.detach(), n_views),
                "loss_mean": reduced[0] / WORLD,
                "metrics_mean": dict(zip(metrics, (reduced[1:] / WORLD).unbind(), strict=True)),
                "local_loss": loss.detach(),
                "z_grad": z.grad,
                "param_grads": [p.grad.clone() for p in ddp.parameters()],
            }
    # bf16 projections, as under bf16-mixed autocast: the gather and its float32-summed backward keep the dtype.
    ddp = nn.parallel.DistributedDataParallel(_model())
    z = ddp(_batch(2)[:, rank * B : (rank + 1) * B].reshape(-1, D_IN)).bfloat16()
    loss, _ = global_info_nce(z, TEMPERATURE, 2)
    loss.backward()
    results["bf16"] = {"param_grads": [p.grad.clone() for p in ddp.parameters()]}
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    dist.barrier()  # both results are on disk
    # Leave without C++ teardown: under load, destroying gloo's pairs while the peer's threads
    # still run sometimes ended a rank in std::terminate (SIGABRT) after its work was done.
    os._exit(0)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True)
    return [torch.load(tmp / f"rank{r}.pt") for r in range(WORLD)]


def _local_rows(t: torch.Tensor, rank: int, n_views: int) -> torch.Tensor:
    """Rows of a global view-major tensor that belong to ``rank``'s images."""
    return t.view(n_views, WORLD * B, -1)[:, rank * B : (rank + 1) * B].reshape(n_views * B, -1)


@pytest.mark.parametrize("n_views", [2, 3])
@pytest.mark.parametrize("mode", ["local_anchors", "full_gather"])
def test_ddp_equals_single_process(ranks: list[dict], n_views: int, mode: str) -> None:
    ref = _single(n_views)
    for rank, results in enumerate(ranks):
        got = results[f"{n_views}/{mode}"]
        # The gather restores the global view-major order: exactly the single process's projections.
        torch.testing.assert_close(got["gathered"], ref["z"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got["loss_mean"], ref["loss"], rtol=1e-5, atol=1e-6)
        for name, value in ref["metrics"].items():
            torch.testing.assert_close(got["metrics_mean"][name], value, rtol=1e-5, atol=1e-6, msg=name)
        if mode == "full_gather":
            torch.testing.assert_close(got["local_loss"], ref["loss"], rtol=1e-5, atol=1e-6)
        # Summed backward: each rank's projections get W times their single-device gradient ...
        torch.testing.assert_close(
            got["z_grad"], WORLD * _local_rows(ref["z_grad"], rank, n_views), rtol=1e-4, atol=1e-7
        )
        # ... so that after DDP's averaging the parameters get exactly the single-device gradient.
        for p_got, p_ref in zip(got["param_grads"], ref["param_grads"], strict=True):
            torch.testing.assert_close(p_got, p_ref, rtol=1e-4, atol=1e-7)


def test_bf16_projections_give_close_gradients(ranks: list[dict]) -> None:
    ref = _single(2)
    for results in ranks:
        for p_got, p_ref in zip(results["bf16"]["param_grads"], ref["param_grads"], strict=True):
            assert p_got.dtype == torch.float32 and torch.isfinite(p_got).all()
            torch.testing.assert_close(p_got, p_ref, rtol=0.05, atol=0.02 * p_ref.abs().max().item())


def test_local_anchor_losses_differ_between_ranks(ranks: list[dict]) -> None:
    """Guards the test itself: each rank's local loss is its own share, not a copy of the global loss."""
    a, b = (r["2/local_anchors"]["local_loss"] for r in ranks)
    assert not torch.allclose(a, b)


def test_gather_is_identity_without_process_group() -> None:
    z = torch.randn(8, 3, requires_grad=True)
    assert gather_views(z, 2) is z
    loss, _ = global_info_nce(z, 0.5, 2)
    torch.testing.assert_close(loss, info_nce(z, 0.5, 2)[0])
    with pytest.raises(ValueError, match="n_views"):
        gather_views(torch.randn(7, 3), 2)
