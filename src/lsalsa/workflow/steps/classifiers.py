"""The expert classifiers of the evaluate step (paper Section 6): a logistic regression per
task, trained on the exact codes of the test images and scored on each method's codes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core import metrics


@dataclass
class Task:
    """One classification task: its labels, the classifier trained on the exact codes, and
    what results.json keeps of it (the errors per method and T)."""

    name: str
    labels: np.ndarray
    classifier: metrics.ExpertClassifier
    image_index: np.ndarray | None
    first_block: int
    record: dict = field(default_factory=dict)

    def features(self, codes: np.ndarray) -> np.ndarray:
        """The codes of a whole image (sparse coding), or of the digit's or the natural
        image's dictionary (MCA)."""
        if self.name == "classes":
            return metrics.image_features(codes, self.image_index)
        first = self.first_block
        return codes[:, :first] if self.name == "digits" else codes[:, first:]

    def error(self, codes: np.ndarray) -> float:
        return self.classifier.error(self.features(codes), self.labels)


def fit_classifiers(arrays: dict, optimal: np.ndarray, kind: str, first_block: int, *,
                    projection_dim: int, C: float, max_iter: int, seed: int) -> dict[str, Task]:
    """The expert classifiers of the test split (``arrays``: its labels and image index),
    trained on its exact codes ``optimal``; a task with fewer than two classes is left out.
    ``first_block``: the number of atoms of the first (digits) dictionary."""
    labels = {}
    if arrays.get("labels") is not None:
        labels["classes" if kind == "sc" else "digits"] = arrays["labels"]
    if kind == "mca" and "labels_component1" in arrays:
        labels["natural"] = arrays["labels_component1"]
    tasks = {}
    for name, values in labels.items():
        if len(np.unique(values)) < 2:
            continue
        clf = metrics.ExpertClassifier(projection_dim, C, max_iter, seed)
        task = Task(name, values, clf, arrays.get("image_index"), first_block)
        task.record = {"optimal_error": clf.fit(task.features(optimal), values),
                       "n": len(values), "classifier": clf.describe(), "errors": {}}
        tasks[name] = task
    return tasks
