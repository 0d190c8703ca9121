"""Dataset QA: validation rules, leakage detection, leak-free splits, dataset cards, converters.

Pure cores (no Ray): :mod:`rules` (catalogue), :mod:`images`, :mod:`schema`, :mod:`boxes`,
:mod:`masks`, :mod:`classes`, :mod:`leakage`, :mod:`split`, :mod:`card`, :mod:`baselines`,
:mod:`convert`, :mod:`pipeline`; the Ray Data adapter is :mod:`distributed`.
"""
# Import the experiment config first: cvray.config composes ValidateConfig while it loads, so
# importing cvray.validate.config before it would hand cvray.config a half-initialised module.
import cvray.config  # noqa: F401
