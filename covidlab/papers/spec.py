"""The shape every paper entry shares: settings, models, data recipe and reported tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from covidlab.heads import Head

if TYPE_CHECKING:  # keras is imported lazily: reading a paper's facts needs no TensorFlow
    import keras


@dataclass(frozen=True)
class ModelSpec:
    """One architecture as a paper describes it.

    ``layer_cutoff`` is the number of backbone layers, counted from the input, kept frozen
    (Apostolopoulos' Table 1); ``base_trainable`` says whether the rest of the backbone trains.
    """

    backbone: str
    head: Head
    base_trainable: bool = False
    layer_cutoff: int | None = None


@dataclass(frozen=True)
class Reported:
    """A table a paper reports, with where it comes from (e.g. "Table 4")."""

    table: pd.DataFrame
    cite: str
    note: str = ""


@dataclass(frozen=True)
class PaperSpec:
    """A paper's experimental setup and reported results.

    Attributes mirror what the methods section states; where the paper is silent the module
    fills in a choice and says so in ``choices``. ``recipe`` maps each class to the number of
    images the paper used; ``recipe_sources`` names where each class was drawn from.
    """

    key: str
    short_name: str
    citation: str  # bibtex key in references.bib
    title: str
    task: str
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    resize: str  # "stretch" or "pad"
    optimizer: str
    learning_rate: float
    batch_size: int
    epochs: int
    protocol: str  # "holdout" or "kfold"
    models: dict[str, ModelSpec]
    recipe: dict[str, int]
    recipe_sources: dict[str, tuple[str, ...]]
    test_fraction: float | None = None
    validation_fraction: float | None = None
    n_splits: int | None = None
    reported: dict[str, Reported] = field(default_factory=dict)
    choices: tuple[str, ...] = ()  # what the paper left open and what we chose
    ambiguities: tuple[str, ...] = ()  # inconsistencies found in the paper

    @property
    def default_model(self) -> str:
        return next(iter(self.models))

    def settings_table(self) -> pd.DataFrame:
        """The training settings as a one-column table for printing in a chapter."""
        rows = {
            "classes": ", ".join(self.classes),
            "input size": f"{self.input_size[0]}x{self.input_size[1]} ({self.resize})",
            "optimizer": self.optimizer,
            "learning rate": self.learning_rate,
            "batch size": self.batch_size,
            "epochs": self.epochs,
            "protocol": self._protocol_text(),
            "models": ", ".join(self.models),
            "images per class": ", ".join(f"{k} {v}" for k, v in self.recipe.items()),
        }
        return pd.DataFrame({self.short_name: rows})

    def choices_markdown(self, *, ambiguities: bool = True, choices: bool = True) -> str:
        """The paper's ambiguities and this course's choices as Markdown numbered lists, for
        ``IPython.display.Markdown`` (a chapter renders them as text, not printed lines)."""
        sections = []
        if ambiguities and self.ambiguities:
            items = "\n".join(f"{i}. {text}" for i, text in enumerate(self.ambiguities, 1))
            sections.append(f"**Where {self.short_name} is ambiguous**\n\n{items}")
        if choices and self.choices:
            items = "\n".join(f"{i}. {text}" for i, text in enumerate(self.choices, 1))
            sections.append(f"**What this course chose**\n\n{items}")
        return "\n\n".join(sections)

    def _protocol_text(self) -> str:
        if self.protocol == "kfold":
            return f"{self.n_splits}-fold cross-validation"
        return f"hold-out, {self.test_fraction:.0%} test"

    def model_spec(self, model_name: str | None = None) -> ModelSpec:
        """One of the paper's architectures by name (default: the first, its headline model)."""
        name = model_name or self.default_model
        if name not in self.models:
            raise KeyError(
                f"{self.short_name} has no model {name!r}; choose from {list(self.models)}"
            )
        return self.models[name]

    def build_model(
        self,
        model_name: str | None = None,
        *,
        input_shape: tuple[int, int, int] | None = None,
        weights: str | None = None,
        num_classes: int | None = None,
    ) -> keras.Model:
        """Build one of the paper's architectures with ``covidlab.models.build_classifier``."""
        from covidlab.models import build_classifier

        name = model_name or self.default_model
        model = self.model_spec(name)
        return build_classifier(
            model.backbone,
            num_classes or len(self.classes),
            input_shape=input_shape or (*self.input_size, 3),
            head=model.head,
            base_trainable=model.base_trainable,
            layer_cutoff=model.layer_cutoff,
            weights=weights,
            name=f"{self.key}_{name}",
        )
