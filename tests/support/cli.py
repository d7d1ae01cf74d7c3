"""The `clearinghouse` command as a user runs it: a subprocess from the repository root."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "clearinghouse", *args], capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result


def error(*args: str) -> str:
    """The one line a failing command prints; asserts exit 1 and no traceback."""
    result = cli(*args, check=False)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# A user's input file with a line that is not JSON, a line the codec refuses and events the engine
# rejects (tests/service/test_cli.py works out what each line does).
WIRE_EXAMPLE = """\
{"type":"market","coin":"BTC","sz_decimals":5,"margin_tiers":[{"lower_bound":"0","max_leverage":40},{"lower_bound":"150000000","max_leverage":20}],"only_isolated":false}
{"type":"market","coin":"ETH","sz_decimals":4,"margin_tiers":[{"lower_bound":"0","max_leverage":25}]}
{"type":"deposit","account":"a1","amount":"1000"}
{"type":"deposit","account":"a2","amount":"100000"}
{"type":"withdraw","account":"a1","amount":"10"}
{"type":"transfer","from":"a1","to":"a2","amount":"5"}
{"type":"set_leverage","account":"a1","coin":"BTC","leverage":20,"cross":true}
{"type":"prices","prices":{"BTC":{"mark":"97000.5","oracle":"97010"},"ETH":{"mark":"3400","oracle":"3400"}}}
not json at all
{"type":"trade","coin":"BTC","px":"97000","sz":"0.1","buyer":"a1","seller":"a2","buyer_fee":"4.365","seller_fee":"-1.455","tid":123}
{"type":"deposit","account":"a1","amount":"1.0000001"}
{"type":"set_leverage","account":"a1","coin":"ETH","leverage":10,"cross":false}
{"type":"trade","coin":"ETH","px":"3400","sz":"0.5","buyer":"a2","seller":"a1","tid":124}
{"type":"isolated_margin","account":"a1","coin":"ETH","delta":"-2.5"}
{"type":"funding","coin":"BTC","rate":"0.0000125"}
{"type":"withdraw","account":"a1","amount":"100000"}
{"type":"rules","name":"hl-2023"}
"""
