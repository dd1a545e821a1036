"""Serving without HTTP: what a model cannot score is named, column by column."""

from __future__ import annotations

import pandas as pd
import pytest

from steward import Steward
from steward.delivery.serving import Service
from steward.errors import InvalidInputError


def test_a_scoring_error_names_every_missing_and_unexpected_column(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    """scikit-learn's message lists a few columns then cuts off; the caller needs all of them."""
    workspace.register_model(telco_model, system="churn")  # no contract on this system
    workspace.move_alias("churn", "champion", 1)
    frame, _ = telco
    record = frame.drop(columns=["customerID", "tenure", "Contract"]).head(1)
    record = record.rename(columns={"MonthlyCharges": "monthly_charges"})
    service = Service(workspace, workspace.events)
    try:
        with pytest.raises(InvalidInputError) as caught:
            service.predict("churn", record.to_dict(orient="records"))
    finally:
        service.close()
    message = str(caught.value)
    missing = message.split("missing 3 column(s) the model takes: ")[1].split(";")[0]
    assert sorted(missing.split(", ")) == ["'Contract'", "'MonthlyCharges'", "'tenure'"]
    assert "1 column(s) the model does not take: 'monthly_charges'" in message
