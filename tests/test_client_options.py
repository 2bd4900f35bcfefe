"""RuntimeOptions and ResultDecoder behave as the seed's did."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit_ibm_runtime.json import RuntimeEncoder

from qruntime.client.decoder import ResultDecoder, encode_json
from qruntime.client.options import RuntimeOptions
from qruntime.exceptions import IBMQInputValueError


def test_backend_name_is_required_with_the_seeds_message() -> None:
    with pytest.raises(IBMQInputValueError) as caught:
        RuntimeOptions().validate()
    assert caught.value.message == '"backend_name" is required field in "options".'


def test_image_must_be_name_colon_tag() -> None:
    RuntimeOptions(backend_name="aer_simulator", image="custom-image:1.0").validate()
    with pytest.raises(IBMQInputValueError) as caught:
        RuntimeOptions(backend_name="aer_simulator", image="no-tag").validate()
    assert caught.value.message == '"image" needs to be in form of image_name:tag'


def test_log_level_must_be_a_logging_level() -> None:
    RuntimeOptions(backend_name="aer_simulator", log_level="info").validate()
    with pytest.raises(IBMQInputValueError) as caught:
        RuntimeOptions(backend_name="aer_simulator", log_level="LOUD").validate()
    assert caught.value.message == ("LOUD is not a valid log level. The valid log levels are: `DEBUG`, "
                                    "`INFO`, `WARNING`, `ERROR`, and `CRITICAL`.")


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        RuntimeOptions(**{"backend_name": "aer_simulator", "shots": 10})


def test_decoder_returns_text_that_is_not_json_unchanged() -> None:
    assert ResultDecoder.decode("All done!") == "All done!"
    assert ResultDecoder.decode("") == ""
    assert ResultDecoder.decode('{"a": [1, 2]}') == {"a": [1, 2]}


def test_decoder_restores_runtime_encoded_values() -> None:
    import json

    text = json.dumps({"array": np.arange(3), "z": 1 + 2j}, cls=RuntimeEncoder)
    decoded = ResultDecoder.decode(text)
    assert np.array_equal(decoded["array"], np.arange(3))
    assert decoded["z"] == 1 + 2j


def test_encode_json_uses_the_runtime_encoder_only_when_plain_json_cannot() -> None:
    assert encode_json({"a": 1}) == '{"a": 1}'
    assert '"__type__": "complex"' in encode_json({"z": 1j})
