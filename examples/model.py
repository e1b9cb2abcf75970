#!/usr/bin/env python3
"""Sample external strategy model for the redline liquidator (auction-keeper style).

Run it with `liquidator --model "python3 examples/model.py"`. The liquidator writes one JSON
opportunity per line on stdin and reads one JSON answer per line on stdout:
`{"go": true, "max_repay": "123"}` (max_repay optional, in the debt denom's smallest unit).
Logs go to stderr; the liquidator forwards them to its own logs.

Policy: go when the expected profit (USD, before fees) is at least MODEL_MIN_PROFIT_USD
(default 1), and never repay more than MODEL_MAX_REPAY (smallest units; unset: no cap).
Amounts are handled as integers/Decimal, never floats.
"""
import json
import os
import sys
from decimal import Decimal, InvalidOperation

MIN_PROFIT_USD = Decimal(os.environ.get("MODEL_MIN_PROFIT_USD", "1"))
MAX_REPAY = os.environ.get("MODEL_MAX_REPAY")


def decide(opportunity):
    try:
        profit = Decimal(str(opportunity["expected_profit_usd"]))
        debt = int(opportunity["debt_to_repay"])
    except (KeyError, ValueError, InvalidOperation) as error:
        print(f"unreadable opportunity: {error}", file=sys.stderr)
        return {"go": False}
    if profit < MIN_PROFIT_USD:
        print(f"{opportunity.get('account')}: profit {profit} below {MIN_PROFIT_USD}", file=sys.stderr)
        return {"go": False}
    answer = {"go": True}
    if MAX_REPAY is not None and debt > int(MAX_REPAY):
        answer["max_repay"] = str(int(MAX_REPAY))
    return answer


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            answer = decide(json.loads(line))
        except json.JSONDecodeError as error:
            print(f"not JSON: {error}", file=sys.stderr)
            answer = {"go": False}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
