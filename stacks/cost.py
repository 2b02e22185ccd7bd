"""Hourly cost of each environment's endpoints, from its config: instances x on-demand price, at min and max, and
the idle cost: what an endpoint costs per month at its minimum instances with no request at all.

`python -m stacks.cost` prints the markdown table that docs/operations.md carries (a test keeps them equal)."""

from __future__ import annotations

from stacks.config import EnvironmentConfig, load_all

HOURS_PER_MONTH = 730


def cost_rows(config: EnvironmentConfig) -> list[tuple[str, str, int, int, float, float, float, float]]:
    """(role, instance type, min, max, USD/h per instance, USD/h at min, USD/h at max, idle USD/month at min) per
    enabled model."""
    rows = []
    for role, model in config.models.enabled():
        price = model.instance.usd_per_hour if model.instance else float("nan")
        rows.append(
            (
                role,
                model.instance_type,
                model.min_instances,
                model.max_instances,
                price,
                price * model.min_instances,
                price * model.max_instances,
                price * model.min_instances * HOURS_PER_MONTH,
            )
        )
    return rows


def cost_table(configs: list[EnvironmentConfig]) -> str:
    lines = []
    for config in configs:
        rows = cost_rows(config)
        lines += [
            f"#### {config.name} ({config.region})",
            "",
            "| model | instance | min | max | USD/h each | USD/h at min | USD/h at max | idle USD/month |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.3f} | {r[5]:.2f} | {r[6]:.2f} | {r[7]:,.0f} |" for r in rows
        ]
        at_min, at_max, idle = sum(r[5] for r in rows), sum(r[6] for r in rows), sum(r[7] for r in rows)
        lines += [
            f"| **total** | | | | | **{at_min:.2f}** | **{at_max:.2f}** | **{idle:,.0f}** |",
            "",
            f"About {at_min * HOURS_PER_MONTH:,.0f} to {at_max * HOURS_PER_MONTH:,.0f} USD per {HOURS_PER_MONTH}-hour "
            "month for the endpoints alone; idle (no request all month, every endpoint at its minimum): "
            f"{idle:,.0f} USD, against a budget of {config.budget.monthly_usd:,.0f} USD.",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(cost_table(load_all()), end="")
