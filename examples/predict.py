"""Predict topic, sentiment and named entities with the bundled default model (no training,
no network).

    python examples/predict.py
"""

from st_multitask import MultiTaskModel

model = MultiTaskModel.default()
texts = [
    "Apple is buying a U.K. startup for $1 billion",
    "The film was a joy from start to finish.",
    "Angela Merkel met Emmanuel Macron in Paris to discuss the euro.",
]
for text, result in zip(texts, model.predict(texts)):
    print(text)
    print(f"  topic:     {result['topic']['label']} ({result['topic']['score']:.2f})")
    print(f"  sentiment: {result['sentiment']['label']} ({result['sentiment']['score']:.2f})")
    for entity in result["ner"]:
        print(
            f"  entity:    {entity['text']!r} {entity['label']} [{entity['start']}:{entity['end']}] ({entity['score']:.2f})"
        )
