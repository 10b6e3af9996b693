"""Method names, in one place: ``name`` or ``name:key=value,…`` → a configured method.

The command line (``dehaze --method``), the benchmark (``dehaze bench --methods``) and the docs
use this registry, so a method has the same name and options everywhere. Options are the
fields of the method's frozen dataclass, converted to the type of the field's default.

Adding a method is one entry of :data:`METHODS` (or :func:`register_method` from your own
code): a name mapped to ``factory(options, context) -> Dehazer``; for a frozen-dataclass
method :func:`dataclass_factory` builds it::

    METHODS["cap"] = dataclass_factory("dehaze.cap:ColorAttenuationPrior")

(a ``"module:Class"`` string is imported only when the method is first built).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from dehaze._data import data_root
from dehaze.dcp import DarkChannelPrior
from dehaze.result import ALL_OUTPUTS, Dehazer, DehazeResult, Scene, check_outputs, check_scene

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_WEIGHTS",
    "METHODS",
    "DataclassFactory",
    "Identity",
    "MethodContext",
    "MethodSpec",
    "build_method",
    "dataclass_factory",
    "describe_method",
    "method_options",
    "parse_method_spec",
    "register_method",
]

#: File names of the published weights in ``$DEHAZE_DATA/weights`` used by default.
DEFAULT_WEIGHTS: dict[str, str] = {
    "aodnet": "aodnet_pytorch_MayankSingal_dehazer.pth",
    "dehazenet": "dehazenet_matlab_caibolun_dehaze.mat",
}

#: The method the command line runs when ``--method`` is not given.
DEFAULT_METHOD = "clear"


@dataclass(frozen=True)
class MethodContext:
    """What a method factory may need besides its options.

    Attributes
    ----------
    data_root : Path
        The evaluation-data folder whose ``weights/`` holds the default network weights
        (``--data`` when it has a ``weights/`` folder, else ``$DEHAZE_DATA``).
    weights : mapping of str to Path
        Weight files given with ``--weights NAME=PATH``, by method name.
    """

    data_root: Path = dataclasses.field(default_factory=data_root)
    weights: Mapping[str, Path] = dataclasses.field(default_factory=dict)


MethodFactory = Callable[[Mapping[str, Any], MethodContext], Dehazer]


class Identity:
    """The floor of every table: return the hazy input unchanged (an empty scene, no halo)."""

    halo = 0

    def halo_for(self, scene: Scene) -> int:
        """No context: the output pixel is the input pixel."""
        check_scene(scene, Scene, "Identity")
        return 0

    def __call__(self, image: ArrayLike, *, outputs: Collection[str] = ALL_OUTPUTS) -> DehazeResult:
        """Return ``image`` itself as the result."""
        check_outputs(outputs)
        return DehazeResult(image=np.asarray(image))

    def estimate(self, image: ArrayLike) -> Scene:
        """Nothing to estimate: an empty scene."""
        return Scene()

    def apply(
        self, image: ArrayLike, scene: Scene, *, outputs: Collection[str] = ALL_OUTPUTS
    ) -> DehazeResult:
        """Return ``image`` itself as the result."""
        check_scene(scene, Scene, "Identity")
        return self(image, outputs=outputs)

    def __repr__(self) -> str:
        return "Identity()"


def _convert_option(cls_name: str, key: str, value: str, default: Any) -> Any:
    """Convert an option string to the type of the field's default value."""
    what = f"{cls_name} option {key}"
    if value.lower() == "none":  # optional fields (e.g. tolerance=none); the class validates
        return None
    if isinstance(default, bool):
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{what} must be true or false, got {value!r}")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{what} must be an integer, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{what} must be a number, got {value!r}") from None
    if isinstance(default, str):
        return value
    # None or tuple defaults (e.g. atmospheric_light): a number, or "a/b/c"
    try:
        if "/" in value:
            return tuple(float(v) for v in value.split("/"))
        return float(value)
    except ValueError:
        raise ValueError(
            f"{what} must be 'none', a number or numbers separated by '/', got {value!r}"
        ) from None


@dataclass(frozen=True)
class DataclassFactory:
    """The factory of a frozen-dataclass method: options are its fields with defaults.

    Attributes
    ----------
    spec : type or str
        The dataclass, or ``"module:Class"`` (imported when first needed).
    """

    spec: type[Any] | str

    def target(self) -> type[Any]:
        """Return the method's class (imported now if given as ``"module:Class"``)."""
        if isinstance(self.spec, str):
            module_name, _, class_name = self.spec.partition(":")
            resolved: type[Any] = getattr(importlib.import_module(module_name), class_name)
            return resolved
        return self.spec

    def options(self) -> dict[str, Any]:
        """Option names → their default values."""
        return {
            f.name: f.default
            for f in dataclasses.fields(self.target())
            if f.init and f.default is not dataclasses.MISSING
        }

    def __call__(self, options: Mapping[str, Any], context: MethodContext) -> Dehazer:
        """Build the method; string values are converted to the type of the default."""
        cls = self.target()
        defaults = self.options()
        kwargs: dict[str, Any] = {}
        for key, value in options.items():
            if key not in defaults:
                accepted = ", ".join(sorted(defaults))
                raise ValueError(
                    f"{cls.__name__} has no option {key!r}; accepted options are {accepted}"
                )
            if isinstance(value, str):
                value = _convert_option(cls.__name__, key, value, defaults[key])
            kwargs[key] = value
        method: Dehazer = cls(**kwargs)
        return method


def dataclass_factory(target: type[Any] | str) -> DataclassFactory:
    """Make a method factory for a dataclass method (fields with defaults as options).

    Parameters
    ----------
    target : type or str
        The dataclass (e.g. :class:`dehaze.DarkChannelPrior`), or ``"module:Class"`` to
        import it only when the method is first built.

    Returns
    -------
    DataclassFactory
        ``factory(options, context)`` that converts every string option to the type of the
        field's default (bool, int, float, str; ``none``, a number or ``a/b/c`` for fields
        whose default is None or a tuple), passes other values as they are, and returns
        ``target(**options)`` (which validates them).

    Examples
    --------
    >>> from pathlib import Path
    >>> from dehaze import DarkChannelPrior
    >>> from dehaze.registry import MethodContext, dataclass_factory
    >>> factory = dataclass_factory(DarkChannelPrior)
    >>> factory({"omega": "0.9", "guide": "color"}, MethodContext(Path("."))).omega
    0.9
    """
    return DataclassFactory(target)


def _identity_factory(options: Mapping[str, Any], context: MethodContext) -> Dehazer:
    if options:
        raise ValueError(f"identity takes no options, got {', '.join(options)}")
    return Identity()


def _weights_path(name: str, options: Mapping[str, Any], context: MethodContext) -> Path:
    """Return network ``name``'s weights: the option, else ``--weights``, else the default."""
    if "weights" in options:
        return Path(options["weights"])
    if name in context.weights:
        return Path(context.weights[name])
    return context.data_root / "weights" / DEFAULT_WEIGHTS[name]


def _network_factory(name: str, class_name: str) -> MethodFactory:
    def factory(options: Mapping[str, Any], context: MethodContext) -> Dehazer:
        unknown = set(options) - {"weights"}
        if unknown:
            raise ValueError(
                f"{name} has no option {sorted(unknown)[0]!r}; accepted options are weights"
            )
        path = _weights_path(name, options, context)
        if not path.is_file():
            raise FileNotFoundError(
                f"{name}: weights file {path} not found; give the file as the option "
                f"{name}:weights=PATH (dehaze --weights PATH, dehaze bench --weights {name}=PATH)"
            )
        try:
            models = importlib.import_module("dehaze.models")
            cls = getattr(models, class_name)
        except (ImportError, AttributeError) as exc:
            raise ImportError(
                f"{name} needs dehaze.models.{class_name}, which is not available ({exc})"
            ) from exc
        method: Dehazer = cls.from_file(path)
        return method

    return factory


def describe_method(method: Dehazer) -> str:
    """Short description of a method: a dataclass's scalar fields, else its class name."""
    cls_name = type(method).__name__
    if not dataclasses.is_dataclass(method):
        return f"{cls_name}()" if isinstance(method, Identity) else cls_name
    shown = []
    for f in dataclasses.fields(method):
        value = getattr(method, f.name)
        if value is None or isinstance(value, (bool, int, float, str, tuple)):
            shown.append(f"{f.name}={value!r}")
    return f"{cls_name}({', '.join(shown)})"


#: Registered methods: name → factory(options, context) -> Dehazer.
METHODS: dict[str, MethodFactory] = {
    "identity": _identity_factory,
    "dcp": dataclass_factory(DarkChannelPrior),
    "robust": dataclass_factory("dehaze.robust:RobustDCP"),
    "clear": dataclass_factory("dehaze.clear:ClearHaze"),
    "cap": dataclass_factory("dehaze.cap:ColorAttenuationPrior"),
    "aodnet": _network_factory("aodnet", "AODNet"),
    "dehazenet": _network_factory("dehazenet", "DehazeNet"),
}


def register_method(name: str, factory: MethodFactory, *, replace: bool = False) -> None:
    """Add a method to :data:`METHODS`.

    Parameters
    ----------
    name : str
        Method name used in specs: letters, digits, ``_`` and ``-``.
    factory : callable
        ``factory(options, context) -> Dehazer`` (see :func:`dataclass_factory`).
    replace : bool, optional
        Allow replacing an existing entry (default False: raise ValueError).
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"name must be letters, digits, '_' or '-', got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    if name in METHODS and not replace:
        raise ValueError(f"method {name!r} is already registered; pass replace=True")
    METHODS[name] = factory


@dataclass(frozen=True)
class MethodSpec:
    """A parsed method spec ``name:key=value,...``.

    Attributes
    ----------
    label : str
        The spec as written (used in tables).
    name : str
        The registered method name.
    options : dict of str to str
        The ``key=value`` options, unconverted.
    """

    label: str
    name: str
    options: dict[str, str]


def parse_method_spec(spec: str) -> MethodSpec:
    """Parse ``name`` or ``name:key=value,key=value`` into a :class:`MethodSpec`.

    Examples
    --------
    >>> parse_method_spec("dcp:omega=0.9,guide=color").options
    {'omega': '0.9', 'guide': 'color'}
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a method spec must be a non-empty string, got {spec!r}")
    label = spec.strip()
    name, _, rest = label.partition(":")
    name = name.strip()
    if name not in METHODS:
        accepted = ", ".join(sorted(METHODS))
        raise ValueError(f"unknown method {name!r} in {label!r}; accepted methods are {accepted}")
    options: dict[str, str] = {}
    if rest.strip():
        for item in rest.split(","):
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise ValueError(f"method option {item!r} in {label!r} must be key=value")
            if key in options:
                raise ValueError(f"method option {key!r} is given twice in {label!r}")
            options[key] = value
    return MethodSpec(label, name, options)


def build_method(spec: MethodSpec | str, context: MethodContext) -> Dehazer:
    """Build the method a spec names (its factory validates the options)."""
    parsed = parse_method_spec(spec) if isinstance(spec, str) else spec
    return METHODS[parsed.name](parsed.options, context)


def method_options(name: str) -> tuple[str, ...]:
    """List the option names a registered method accepts (a dataclass's fields with defaults).

    Examples
    --------
    >>> "guide" in method_options("dcp"), "guide" in method_options("robust")
    (True, False)
    """
    if name not in METHODS:
        accepted = ", ".join(sorted(METHODS))
        raise ValueError(f"unknown method {name!r}; accepted methods are {accepted}")
    factory = METHODS[name]
    if isinstance(factory, DataclassFactory):
        return tuple(factory.options())
    return ("weights",) if name in DEFAULT_WEIGHTS else ()
