"""The Magic Hour client against faults only a real network produces, injected with aioresponses."""
