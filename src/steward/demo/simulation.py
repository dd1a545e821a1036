"""The simulated market behind ``steward demo``: customers, a product launch, churn, and a server.

Everything here is drawn from the shipped Telco data with one seeded generator, so a run is
reproducible and another seed gives other figures with the same story:

- each week, customers are sampled (with replacement) from the customers no model was trained on,
  each with a fresh entity key (``<customerID>-w07``) and an event time inside the simulated week;
- from the launch week on, a share of them are on the new product: ``InternetService`` takes a value
  no model has seen, ``MonthlyCharges`` rise, and the new billing pipeline sends ``TotalCharges`` in
  cents (the broken feature). Their churn follows another pattern (customers on one- and two-year
  contracts leave for a competitor's offer, month-to-month ones stay), so a model trained before the
  launch ranks them badly;
- a churner the policy contacted (actioned, not held out) is retained with ``retain_probability``:
  that is the effect the holdout measures.

``InProcessServer`` runs the real HTTP app (``steward.web.create_app``) under uvicorn on a thread, so
the demo scores through the same API users call.

>>> market = Market()
>>> market.launch_week, market.new_product
(7, 'Fiber 1G')
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI

from steward.errors import StoreError

__all__ = [
    "InProcessServer",
    "Market",
    "Week",
    "customers_for_week",
    "launch_product",
    "observed_churn",
]


@dataclass(frozen=True)
class Market:
    """The knobs of the simulated market; the defaults are what the README's demo runs."""

    weeks: int = 12
    launch_week: int = 7
    new_product: str = "Fiber 1G"
    new_product_share: float = 0.4
    price_rise: float = 1.3
    price_step: float = 10.0
    cents_factor: float = 100.0
    new_product_churn_long_contract: float = 0.6
    new_product_churn_month_to_month: float = 0.45
    retain_probability: float = 0.2
    label_delay: timedelta = timedelta(weeks=2)


@dataclass(frozen=True)
class Week:
    """One simulated week: ``[start, end)``, numbered from 1."""

    number: int
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return f"week {self.number:>2} ({self.start:%d %b}-{self.end:%d %b})"


def customers_for_week(
    pool: pd.DataFrame,
    churn: pd.Series,
    week: Week,
    n_customers: int,
    market: Market,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """This week's customers: features (with ``entity_key`` and ``event_time``), natural churn, new.

    ``natural churn`` is what each customer does if nobody calls; ``new`` marks the new product.
    """
    rows = rng.integers(0, len(pool), size=n_customers)
    frame = pool.iloc[rows].reset_index(drop=True)
    target = churn.iloc[rows].to_numpy().astype(int)
    keys = frame.pop("customerID").astype(str) + f"-w{week.number:02d}"
    seconds = rng.uniform(0, (week.end - week.start).total_seconds(), size=n_customers)
    times = [week.start + timedelta(seconds=float(s)) for s in np.sort(seconds)]
    is_new = np.zeros(n_customers, dtype=bool)
    if week.number >= market.launch_week:
        frame, target, is_new = launch_product(frame, target, market, rng)
    frame.insert(0, "entity_key", keys.to_numpy())
    frame["event_time"] = [moment.isoformat() for moment in times]
    return frame, target, is_new


def launch_product(
    frame: pd.DataFrame, target: np.ndarray, market: Market, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Move a share of ``frame`` to the new product, with its prices, its broken feature and churn.

    >>> frame = pd.DataFrame({"InternetService": ["DSL"] * 4, "MonthlyCharges": [50.0] * 4,
    ...                       "TotalCharges": [100.0] * 4, "Contract": ["Two year"] * 4})
    >>> moved, churn, new = launch_product(frame, np.zeros(4, dtype=int),
    ...                                    Market(new_product_share=1.0), np.random.default_rng(0))
    >>> moved["TotalCharges"].tolist(), moved["MonthlyCharges"].tolist()[0]
    ([10000.0, 10000.0, 10000.0, 10000.0], 75.0)
    """
    frame = frame.copy()
    is_new = rng.random(len(frame)) < market.new_product_share
    frame.loc[is_new, "InternetService"] = market.new_product
    frame.loc[is_new, "MonthlyCharges"] = (
        frame.loc[is_new, "MonthlyCharges"] * market.price_rise + market.price_step
    ).round(2)
    # The broken feature: the new billing system reports totals in cents.
    frame.loc[is_new, "TotalCharges"] = (
        frame.loc[is_new, "TotalCharges"] * market.cents_factor
    ).round(0)
    long_contract = (frame["Contract"] != "Month-to-month").to_numpy()
    rate = np.where(
        long_contract,
        market.new_product_churn_long_contract,
        market.new_product_churn_month_to_month,
    )
    redrawn = (rng.random(len(frame)) < rate).astype(int)
    return frame, np.where(is_new, redrawn, target), is_new


def observed_churn(
    natural: np.ndarray, contacted: np.ndarray, market: Market, rng: np.random.Generator
) -> np.ndarray:
    """Who churned in the end: a contacted churner stays with ``retain_probability``.

    >>> observed_churn(np.array([1, 1, 0]), np.array([False, True, True]),
    ...                Market(retain_probability=1.0), np.random.default_rng(0)).tolist()
    [1, 0, 0]
    """
    retained = contacted & (rng.random(len(natural)) < market.retain_probability)
    return np.where(retained, 0, natural).astype(int)


def _bound_socket(host: str, preferred: int) -> socket.socket:
    """A socket bound to ``preferred`` when it is free (0: any), else to a port the OS picks."""
    for candidate in (preferred, 0) if preferred else (0,):
        bound = socket.socket()
        try:
            bound.bind((host, candidate))
        except OSError:
            bound.close()
            continue
        return bound
    raise StoreError(f"no free port on {host}")  # pragma: no cover - the OS always has one


class InProcessServer:
    """The real app under uvicorn on a background thread, until ``stop()``.

    >>> server = InProcessServer(app, port=0).start()   # doctest: +SKIP
    >>> server.url                                        # doctest: +SKIP
    'http://127.0.0.1:40123'
    """

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        # Bound here and handed to uvicorn, so no other process can take the port in between.
        self._socket = _bound_socket(host, port)
        self.port = int(self._socket.getsockname()[1])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="steward-demo-server"
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> InProcessServer:
        """Start serving; return once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise StoreError(f"the demo server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def wait(self) -> None:
        """Serve in the foreground until Ctrl-C."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Shut down (the app's lifespan closes what it owns) and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(30)
        self._socket.close()
