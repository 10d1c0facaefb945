"""One catalogue of runtimes: every command takes its runtimes and default backends from it."""
import pytest

from srjs.errors import BadInput
from srjs.runtime import RUNTIMES, kinds
from tests.conftest import run_cli


def test_defaults_are_backends_the_runtime_has():
    for kind in kinds.KINDS.values():
        assert set(kind.check_backends) <= set(kind.backends)
        assert set(kind.timing_backends) <= set(kind.backends)


def test_every_tfjs_runner_is_catalogued():
    assert set(RUNTIMES.names()) <= set(kinds.KINDS)


@pytest.mark.parametrize("command, runtime", [("verify", "python"), ("upscale", "browser"), ("bench", "legacy")])
def test_commands_refuse_runtimes_they_do_not_take(command, runtime):
    with pytest.raises(BadInput, match=f"unknown runtime '{runtime}' for {command} .*known: "):
        kinds.get(runtime, command)


def test_cli_upscale_offers_the_catalogue(tmp_path):
    done = run_cli("upscale", tmp_path, tmp_path / "x.png", "-o", tmp_path / "y.png", "--runtime", "browser")
    assert done.exit_code == 2 and "'python', 'node'" in done.output
