"""Embed three sentences with the packaged all-MiniLM-L6-v2 and print their cosine similarities.

python examples/embeddings.py
"""

from st_multitask import cosine_similarity, embed

sentences = ["The dog ran across the grass.", "The cat jumped into the weeds.", "Why is the sky blue?"]
vectors = embed(sentences)  # (3, 384) float32, unit length
scores = cosine_similarity(vectors, vectors)

width = max(len(s) for s in sentences)
print(" " * width + "".join(f"  {'s' + str(j + 1):>5}" for j in range(len(sentences))))
for i, sentence in enumerate(sentences):
    print(sentence.ljust(width) + "".join(f"  {scores[i, j]:.3f}" for j in range(len(sentences))))
print()
for i in range(len(sentences)):
    for j in range(i + 1, len(sentences)):
        print(f"{scores[i, j]:.3f}  {sentences[i]!r} vs {sentences[j]!r}")
