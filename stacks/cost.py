"""Hourly cost of each environment's endpoints, from its config: instances x on-demand price, at min and max.

`python -m stacks.cost` prints the markdown table that docs/operations.md carries (a test keeps them equal)."""

from __future__ import annotations

from stacks.config import EnvironmentConfig, load_all


def cost_rows(config: EnvironmentConfig) -> list[tuple[str, str, int, int, float, float, float]]:
    """(role, instance type, min, max, USD/h per instance, USD/h at min, USD/h at max) per enabled model."""
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
            "| model | instance | min | max | USD/h each | USD/h at min | USD/h at max |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.3f} | {r[5]:.2f} | {r[6]:.2f} |" for r in rows]
        at_min, at_max = sum(r[5] for r in rows), sum(r[6] for r in rows)
        lines += [
            f"| **total** | | | | | **{at_min:.2f}** | **{at_max:.2f}** |",
            "",
            f"About {at_min * 730:,.0f} to {at_max * 730:,.0f} USD per 730-hour month for the endpoints alone.",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(cost_table(load_all()), end="")
