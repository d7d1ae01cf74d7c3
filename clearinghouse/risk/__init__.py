"""The risk-based portfolio margin (docs/risk-margin.md): its parameters (`params`, shipped
`defaults`), an account's exposures per underlying (`exposure`), the scenario scan and the
spread credits (`scan`), the charges beside them (`charges`) and the requirement with its
breakdown (`requirement`). Pure integer arithmetic; the margin model is `models/risk.py`."""
