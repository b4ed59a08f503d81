"""The built-in feature modules, one per feature (docs/extending.md).

Each is loaded by name from the config's ``[features] enabled`` list and sees its node only
through its :class:`~coffeechat.modules.ModuleAPI`; third parties add theirs through the
``coffeechat.features`` entry-point group.
"""
