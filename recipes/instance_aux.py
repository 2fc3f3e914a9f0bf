"""Dense auxiliary loss for training from scratch: image features that group pixels by instance.

SAM 2's own losses reach the image encoder only through the masks of the prompted objects,
a sparse signal that a randomly initialised encoder learns from slowly (the warm-up sits on a
plateau before masks follow object outlines, and wider encoders can collapse there). The
synthetic data knows every instance of every frame, so the features the mask decoder reads
(the embedding and both skip levels) can be taught directly: at each level, every pixel's
feature direction is classified among the mean directions of the instances of its frame
(background is one of them), with each instance weighted equally. Textured objects then
become one group, and touching cells two. Only training uses it; the model is unchanged.

:class:`InstanceGroupingLoss` hands it to the trainer as an extra loss
(``Trainer(extra_losses={"instance": InstanceGroupingLoss()})``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sam2_plugins.train.unroll import ClipLoss


def instance_grouping_loss(feature_maps: list[torch.Tensor], labels: torch.Tensor,
                           temperature: float = 0.1) -> torch.Tensor:
    """Mean over levels and frames of the prototype cross-entropy.

    feature_maps: [(N, C, h, w)] features of N frames at any resolutions; labels (N, S, S)
    integer instance ids (0 = background), nearest-resampled to each level. Frames with
    fewer than two groups at a level add nothing.
    """
    total = feature_maps[0].new_zeros((), dtype=torch.float32)
    terms = 0
    for feats in feature_maps:
        n, _, h, w = feats.shape
        lab = F.interpolate(labels[:, None].float(), size=(h, w), mode="nearest")[:, 0].long()  # (N, h, w)
        unit = F.normalize(feats.float().flatten(2), dim=1)  # (N, C, hw)
        for i in range(n):
            ids, group = torch.unique(lab[i].flatten(), return_inverse=True)  # (K,), (hw,)
            if len(ids) < 2:
                continue
            member = F.one_hot(group, len(ids)).float()  # (hw, K)
            counts = member.sum(0)  # (K,)
            protos = F.normalize(unit[i] @ member / counts, dim=0)  # (C, K) mean direction of each group
            logits = (protos.T @ unit[i]).T / temperature  # (hw, K)
            total = total + F.cross_entropy(logits, group, weight=1.0 / counts)
            terms += 1
    return total / max(terms, 1)


class InstanceGroupingLoss(ClipLoss):
    """:func:`instance_grouping_loss` of the clip's embedding and both skip levels."""

    uses_labels = True

    def features(self, feats, labels: torch.Tensor | None) -> torch.Tensor | None:
        if labels is None:
            return None
        return instance_grouping_loss([feats.embed, *feats.high_res], labels)
