"""Questions about the shipped corpus that the latency benches ask (`serve_latency.py`, `ui_load.py`): five
answered from different documents, one near-topic, one off-topic."""

QUESTIONS = [
    "How many vehicles did China export in 2023?",
    "What tariff did Turkey impose on Chinese cars?",
    "How many vehicles did Hyundai and Kia build at overseas bases in 2023?",
    "What three fronts should the industry strategy focus on?",
    "How many vehicles did Japan produce in 2023?",
    "What share of their foreign sales do Chinese companies produce abroad?",
    "Who won the 2022 World Cup?",
]
ANSWERED = QUESTIONS[:5]
