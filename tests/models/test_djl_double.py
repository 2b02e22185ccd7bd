"""The DJL double itself: it must apply DJL Serving's rules (djl-serving's ModelInfo, PyPredictor, inputs.py,
outputs.py, python_sync_engine.py; versions in djl_double's docstring), or the package tests prove nothing."""

from __future__ import annotations

import json
from pathlib import Path

import djl_double
import pytest
from djl_double import Input, Output

from stacks import serving_properties

# ---- model loading: serving.properties wins over OPTION_* ----


def package(tmp_path: Path, properties: str) -> Path:
    (tmp_path / "serving.properties").write_text(properties)
    return tmp_path


def test_the_file_wins_and_the_environment_fills_the_rest(tmp_path):
    pkg = package(tmp_path, "engine=Python\noption.model_name=from/the-file\noption.dtype=fp16\nbatch_size=4\n")
    env = {"OPTION_MODEL_NAME": "from/config", "OPTION_DTYPE": "bf16", "OPTION_SAM_MODEL_NAME": "x/sam", "HOME": "/"}
    props = djl_double.worker_properties(pkg, env)
    assert props["model_name"] == "from/the-file" and props["dtype"] == "fp16"  # what the issue found
    assert props["sam_model_name"] == "x/sam"  # a key the file leaves open
    assert "engine" not in props and "batch_size" not in props and "HOME" not in props  # not options
    assert props["device_id"] == "-1" and "model_dir" not in props  # what python_sync_engine adds, on CPU


def test_option_names_are_lower_cased_as_djl_does(tmp_path):
    props = djl_double.worker_properties(package(tmp_path, "engine=Python\n"), {"OPTION_Label_Cache_SIZE": "7"})
    assert props["label_cache_size"] == "7"


def test_an_s3_model_id_is_the_directory_the_container_downloaded(tmp_path):
    pkg = package(tmp_path, "engine=Python\n")
    env = {"OPTION_MODEL_ID": "s3://bucket/weights/x/"}
    assert (
        djl_double.worker_properties(pkg, env, downloads={"s3://bucket/weights/x/": "/opt/w"})["model_id"] == "/opt/w"
    )
    with pytest.raises(KeyError, match="s3://bucket/weights/x/"):
        djl_double.worker_properties(pkg, env)
    assert djl_double.worker_properties(pkg, {"OPTION_MODEL_ID": "org/model"})["model_id"] == "org/model"


def test_properties_files_are_read_as_java_reads_them():
    text = "\n".join(
        [
            "# comment",
            "! also a comment",
            "   option.a = 1",
            "option.b:two",
            "option.c three words",
            'option.json={"k": "v:w=x"}',
            "option.long=first \\",
            "    second",
            "option.empty=",
        ]
    )
    assert serving_properties.read_properties(text) == {
        "option.a": "1",
        "option.b": "two",
        "option.c": "three words",
        "option.json": '{"k": "v:w=x"}',
        "option.long": "first second",
        "option.empty": "",
    }


# ---- one request ----


def test_an_exception_in_handle_is_a_424_with_the_engines_default_body():
    def broken(_inputs):
        raise ValueError("no such thing")

    response = djl_double.invoke(broken, {"a": 1})
    assert (response.code, response.message) == (424, "prediction failure")
    assert response.body == {"code": 424, "message": "prediction failure", "error": "no such thing"}
    assert response.header("Content-Type") == "application/json"


def test_none_is_204_and_a_wrong_type_is_a_424():
    assert djl_double.invoke(lambda _inputs: None, {}).code == 204
    wrong = djl_double.invoke(lambda _inputs: {"not": "an Output"}, {})
    assert wrong.code == 424 and "Invalid output type" in wrong.body["error"]


def test_json_is_encoded_as_outputs_py_does():
    output = Output().add_as_json({"a": [1, 2]}, key="data")
    assert bytes(output.content.get("data")) == b'{\n  "a":[\n    1,\n    2\n  ]\n}'
    with pytest.raises(ValueError):
        Output().add_as_json({"x": float("nan")})


# ---- a dynamic batch ----


def echo_batch(inputs: Input) -> Output:
    """Answers each request of a batch with what it received: its properties and body."""
    output = Output()
    for i, item in enumerate(inputs.get_batches()):
        output.add_as_json({"properties": item.get_properties(), "body": item.get_as_json()}, key="data", batch_index=i)
    return output


def test_a_batch_carries_batch_000_keys_and_splits_back():
    batch = djl_double.batch_input([{"n": 0}, {"n": 1}], content_type="application/json")
    assert batch.properties == {
        "batch_size": "2",
        "batch_000.Content-Type": "application/json",
        "batch_001.Content-Type": "application/json",
    }
    assert batch.content.get_keys() == ["batch_000.data", "batch_001.data"]
    responses = djl_double.invoke_batch(echo_batch, [{"n": 0}, {"n": 1}])
    assert [r.body for r in responses] == [
        {"properties": {"Content-Type": "application/json"}, "body": {"n": i}} for i in (0, 1)
    ]


def test_code_and_properties_are_shared_by_the_batch_per_item_ones_are_not_split():
    def per_item_properties(inputs: Input) -> Output:
        output = Output().set_code(201)
        for i, _item in enumerate(inputs.get_batches()):
            output.add_as_json({"i": i}, key="data", batch_index=i)
            output.add_property(f"batch_{i}_Content-Type", "text/plain" if i else "application/json")
        return output

    responses = djl_double.invoke_batch(per_item_properties, [{}, {}])
    assert [r.code for r in responses] == [201, 201]
    expected = {"batch_0_Content-Type": "application/json", "batch_1_Content-Type": "text/plain"}
    assert all(r.properties == expected for r in responses)  # every caller gets both, neither as Content-Type
    assert all(r.header("Content-Type") is None for r in responses)


def test_an_exception_fails_every_request_of_the_batch_with_a_424():
    def broken(_inputs):
        raise RuntimeError("boom")

    responses = djl_double.invoke_batch(broken, [{}, {}, {}])
    assert [(r.code, r.body["error"]) for r in responses] == [(424, "boom")] * 3


def test_an_error_code_is_given_whole_to_every_request():
    def refuse(_inputs):
        return Output(code=503, message="busy").add_as_json({"busy": True}, key="data", batch_index=0)

    assert [(r.code, r.message, r.body) for r in djl_double.invoke_batch(refuse, [{}, {}])] == [
        (503, "busy", {"busy": True})
    ] * 2


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        (["batch_0.data"], "Batch output size mismatch"),
        (["batch_0.data", "batch_0.extra"], "request 0 has 2 content entries"),  # DJL: request 1 gets nothing
        (["batch_0.data", "data"], "Unexpected batch output key: data"),
        (["batch_0.data", "batch_7.data"], "names no request"),
    ],
)
def test_batch_outputs_djl_would_reject(keys, reason):
    def answer(_inputs):
        output = Output()
        for key in keys:
            output.add(json.dumps({}), key=key)
        return output

    with pytest.raises(djl_double.BatchFailure, match=reason):
        djl_double.invoke_batch(answer, [{}, {}])


def test_one_request_is_never_a_batch():
    with pytest.raises(ValueError):
        djl_double.invoke_batch(echo_batch, [{}])
