"""Losses beside cross-entropy that the training loop can add (their weights are train settings)."""

from __future__ import annotations

import torch


def supervised_contrastive(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020; CLMLF's label-based half): each pair's
    normalised fused representation is pulled towards the batch's other pairs of its label and
    pushed from the rest. Pairs with no other pair of their label in the batch do not count."""
    z = torch.nn.functional.normalize(embeddings.float(), dim=-1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    counts = positives.sum(1)
    has = counts > 0
    if not has.any():
        return embeddings.sum() * 0.0  # no positive pair: nothing to pull together (keeps the graph)
    mean_log_prob = log_prob.masked_fill(~positives, 0.0).sum(1)[has] / counts[has]
    return -mean_log_prob.mean()


def view_contrastive(embeddings: torch.Tensor, views: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """View-contrastive loss (InfoNCE both ways; CLMLF's data-based half): each pair's normalised
    fused representation is pulled towards that of its own augmented view (row ``i`` of ``views``)
    and pushed from the other pairs' views in the batch."""
    a = torch.nn.functional.normalize(embeddings.float(), dim=-1)
    b = torch.nn.functional.normalize(views.float(), dim=-1)
    logits = a @ b.T / temperature
    target = torch.arange(len(a), device=a.device)
    return (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2
