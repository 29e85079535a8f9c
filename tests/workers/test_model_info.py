"""What a node reads from a Hugging Face model, and each reason it refuses one (docs/models.md)."""

import json
import shutil
import struct

import pytest

from workers.model_info import ModelRefused, hub_cache_dir, inspect_model, main, safetensors_params


@pytest.fixture
def model_copy(tiny_hf_dir, tmp_path):
    return shutil.copytree(tiny_hf_dir, tmp_path / "model")


def test_a_built_model_reads_as_its_config_says_with_the_exact_parameter_count_of_the_torch_model(
    tiny_hf_dir,
):
    from transformers import AutoModelForCausalLM

    torch_params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_hf_dir).parameters())
    config = json.loads((tiny_hf_dir / "config.json").read_text())

    info = inspect_model(str(tiny_hf_dir))

    assert info.params == torch_params
    assert info.architecture == "LlamaForCausalLM"
    assert info.model_type == "llama"
    assert info.vocab_size == config["vocab_size"]
    assert info.context_length == 1024
    assert info.config_dtype == "float32"
    assert info.path == str(tiny_hf_dir.resolve())
    assert info.tokenizer_path == info.path


def test_sharded_weights_are_counted_through_their_index(model_copy):
    whole = safetensors_params(model_copy / "model.safetensors")
    # Two shards of one header each, as save_pretrained writes them past its shard size.
    header = json.loads(_header_bytes(model_copy / "model.safetensors"))
    names = [n for n in header if n != "__metadata__"]
    half = len(names) // 2
    for i, part in enumerate((names[:half], names[half:])):
        shard = model_copy / f"model-0000{i + 1}-of-00002.safetensors"
        _write_header_only(shard, {n: header[n] for n in part})
    (model_copy / "model.safetensors").unlink()
    weight_map = {n: f"model-0000{1 if j < half else 2}-of-00002.safetensors" for j, n in enumerate(names)}
    (model_copy / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))

    assert inspect_model(str(model_copy)).params == whole


def test_no_config_is_refused(model_copy):
    (model_copy / "config.json").unlink()

    with pytest.raises(ModelRefused, match=r"no config\.json in .*model"):
        inspect_model(str(model_copy))


def test_a_config_that_is_not_json_is_refused(model_copy):
    (model_copy / "config.json").write_text("{not json")

    with pytest.raises(ModelRefused, match="is not readable JSON"):
        inspect_model(str(model_copy))


def test_no_weights_are_refused(model_copy):
    (model_copy / "model.safetensors").unlink()

    with pytest.raises(ModelRefused, match=r"no weights in .*looked for \*\.safetensors"):
        inspect_model(str(model_copy))


def test_pickled_weights_alone_are_refused_with_what_to_do(model_copy):
    (model_copy / "model.safetensors").rename(model_copy / "pytorch_model.bin")

    with pytest.raises(ModelRefused, match=r"only pickled weights.*safetensors only.*safe_serialization"):
        inspect_model(str(model_copy))


def test_an_index_naming_missing_shards_is_refused(model_copy):
    (model_copy / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}})
    )

    with pytest.raises(ModelRefused, match="names shards that are not there: model-00001-of-00002"):
        inspect_model(str(model_copy))


def _framed(header: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x01\x02", "the file is too short"),
        (struct.pack("<Q", 10**12) + b"{}", "claims 1000000000000 bytes"),
        (_framed(b"{nope"), "Expecting property name"),
        (_framed(b"[]"), "not a JSON object"),
        (_framed(b'{"w": {"dtype": "F32"}}'), "tensor w has no shape"),
    ],
    ids=["short", "huge-length", "not-json", "not-object", "no-shape"],
)
def test_an_unreadable_safetensors_header_is_refused_naming_the_file(model_copy, content, reason):
    (model_copy / "model.safetensors").write_bytes(content)

    with pytest.raises(ModelRefused, match=r"model\.safetensors") as refused:
        inspect_model(str(model_copy))

    assert reason in str(refused.value)


def test_no_tokenizer_is_refused_saying_what_it_looked_for(model_copy):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model_copy / name).unlink()

    looked = r"no tokenizer in .*looked for tokenizer\.json, tokenizer\.model, vocab\.json \+ merges\.txt"
    with pytest.raises(ModelRefused, match=looked):
        inspect_model(str(model_copy))


def test_a_tokenizer_elsewhere_is_read_from_there(model_copy, tiny_hf_dir):
    (model_copy / "tokenizer.json").unlink()

    info = inspect_model(str(model_copy), tokenizer=str(tiny_hf_dir))

    assert info.tokenizer_path == str(tiny_hf_dir.resolve())


def _fake_cache(root, tiny_hf_dir, repo_id, revision="0123abcd"):
    repo = root / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(tiny_hf_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision + "\n")
    return repo / "snapshots" / revision


def test_a_hub_id_resolves_from_the_local_cache_snapshot_that_main_points_to(tmp_path, tiny_hf_dir):
    snapshot = _fake_cache(tmp_path / "hub", tiny_hf_dir, "acme/tiny-coder")
    (snapshot.parent / "old").mkdir()  # an older snapshot main no longer points to

    info = inspect_model("acme/tiny-coder", env={"HF_HUB_CACHE": str(tmp_path / "hub")})

    assert info.path == str(snapshot.resolve())
    assert info.params == inspect_model(str(tiny_hf_dir)).params


def test_the_cache_is_hf_hub_cache_else_hf_home_hub_else_the_home_cache(tmp_path):
    assert hub_cache_dir({"HF_HUB_CACHE": "/c", "HF_HOME": "/h"}) == type(tmp_path)("/c")
    assert hub_cache_dir({"HF_HOME": "/h"}) == type(tmp_path)("/h/hub")
    assert hub_cache_dir({}).parts[-3:] == (".cache", "huggingface", "hub")


def test_a_hub_id_that_is_not_cached_is_refused_saying_where_it_looked(tmp_path):
    with pytest.raises(ModelRefused) as refused:
        inspect_model("acme/not-here", env={"HF_HOME": str(tmp_path / "hf")})

    message = str(refused.value)
    assert "is neither a directory on this node nor in its Hugging Face cache" in message
    assert str(tmp_path / "hf" / "hub" / "models--acme--not-here") in message
    assert "Nothing is downloaded" in message


def test_a_path_that_is_not_there_is_refused_as_a_path(tmp_path):
    with pytest.raises(ModelRefused, match="is not a directory on this node"):
        inspect_model(str(tmp_path / "gone"))


def test_the_command_line_prints_the_answer_or_the_refusal(tiny_hf_dir, tmp_path, capsys):
    assert main([str(tiny_hf_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["architecture"] == "LlamaForCausalLM"

    assert main([str(tmp_path / "gone")]) == 1
    assert "refused: " in capsys.readouterr().err


def _header_bytes(path):
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return data[8 : 8 + length]


def _write_header_only(path, header):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
