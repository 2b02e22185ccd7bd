"""vlp.dicts.deep_merge: the jobs' stored fields put back (vlp.pipeline.stored) and the model roles' defaults under a
config's values (stacks.config) both merge with it."""

from __future__ import annotations

import copy

from vlp.dicts import deep_merge


def test_objects_merge_recursively_and_other_values_replace():
    base = {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "b": [1, 2], "c": "kept"}
    override = {"a": {"y": {"q": 3}, "z": 4}, "b": [3], "d": None}
    before = (copy.deepcopy(base), copy.deepcopy(override))
    merged = deep_merge(base, override)
    assert merged == {"a": {"x": 1, "y": {"p": 1, "q": 3}, "z": 4}, "b": [3], "c": "kept", "d": None}
    assert (base, override) == before  # neither argument changed


def test_an_object_replaces_a_scalar_and_a_scalar_an_object():
    assert deep_merge({"a": 1, "b": {"x": 1}}, {"a": {"x": 2}, "b": 0}) == {"a": {"x": 2}, "b": 0}
