"""Zero-shot labels: the specification's labels on everyday sentences, with no training and no
example, from the label names alone (``other``: none of the others).

    python examples/zero_shot.py > examples/zero_shot_output.txt

The expected label beside each sentence was written by hand with the sentences; the output file is
what this script printed (``tests/test_examples.py`` checks that it still does).
"""

from st_multitask import load

LABELS = "sports,health,tech,finance,education,other"
SENTENCES = [  # (sentence, the label a person would give)
    ("The goalkeeper saved two penalties in the shootout.", "sports"),
    ("She finished the marathon in under three hours.", "sports"),
    ("Our basketball team made it to the playoffs.", "sports"),
    ("The cyclist crashed on the final descent.", "sports"),
    ("The clinic doubled its opening hours for flu shots.", "health"),
    ("Drinking enough water helps with headaches.", "health"),
    ("The doctor prescribed antibiotics for the infection.", "health"),
    ("Hospitals are short of nurses this winter.", "health"),
    ("The new laptop has a faster processor and more memory.", "tech"),
    ("Update the app to fix the login bug.", "tech"),
    ("The company released an open-source AI model.", "tech"),
    ("My phone will not connect to the Wi-Fi network.", "tech"),
    ("Stocks fell after the central bank raised interest rates.", "finance"),
    ("I moved my savings into a fund with lower fees.", "finance"),
    ("The mortgage payment went up again this month.", "finance"),
    ("Inflation ate into everyone's wages last year.", "finance"),
    ("Our school will switch to online classes next term.", "education"),
    ("The university raised tuition for international students.", "education"),
    ("He is studying for his final exams in chemistry.", "education"),
    ("Teachers asked for smaller classes and more support.", "education"),
    ("I had pasta for dinner with my cousin.", "other"),
    ("The cat fell asleep on the windowsill.", "other"),
    ("We painted the living room a pale green.", "other"),
    ("It rained all afternoon, so we stayed in.", "other"),
]

model = load()  # the bundled default model; on a CPU, ONNX Runtime (no torch)
results = model.predict([text for text, _ in SENTENCES], labels=LABELS)
right = 0
print(f"labels: {LABELS}\n")
print(f"{'sentence':60s} {'expected':10s} {'predicted':10s} score")
for (text, expected), result in zip(SENTENCES, results):
    answer = result["zero_shot"]
    right += answer["label"] == expected
    mark = "" if answer["label"] == expected else "  <- differs"
    print(f"{text:60s} {expected:10s} {answer['label']:10s} {answer['score']:.2f}{mark}")
print(f"\n{right} of {len(SENTENCES)} as expected")
