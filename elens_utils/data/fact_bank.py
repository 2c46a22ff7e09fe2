"""The items of the project's own four-option question set (:mod:`elens_utils.data.fact_questions`).

Licence: written for this project by its authors, MIT (the repository's LICENSE). No item is
taken from a published dataset; the facts are common knowledge, the wording and the stories are
ours.

Twelve subjects of 32 items each. Eight ask for common-sense and world facts, four ask for an
inference over a short story whose answer word is not in the story (the answer cannot be copied):

==============  =========  ===========================================================
subject         kind       what is asked
==============  =========  ===========================================================
capitals        fact       the capital of a country
colours         fact       the usual colour of a thing
animal_sounds   fact       the sound an animal makes, or the animal that makes a sound
opposites       fact       the opposite of a word
arithmetic      fact       one small sum, difference or product
numbers         fact       how many (legs, days, sides, ...)
calendar        fact       the day or month before or after another
categories      fact       which of four things belongs to a category
nature          fact       everyday science and nature
feelings        inference  how a person in a story most likely feels
next_event      inference  what most likely happens next in a story
objects         inference  which object a person in a story needs
==============  =========  ===========================================================

An item is written as ``(question, answer, distractors)``, or ``(story, question, answer,
distractors)`` for the inference subjects. ``distractors`` may hold fewer than three wrong
options: the rest are drawn from the subject's pool (:data:`POOLS`) by a generator seeded with
the item's id, so the bank is the same on every machine and for every ``seed`` of
:func:`~elens_utils.data.fact_questions.fact_questions` (the seed only orders the items and places the
answers). Pools only hold options that are wrong for every item they fill.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["FactItem", "LICENCE", "SUBJECTS", "SUBJECT_KIND", "POOLS", "SHOTS", "fact_bank"]

LICENCE = "Written for the elens_utils project; MIT licence (see LICENSE). Not taken from any dataset."


@dataclass(frozen=True)
class FactItem:
    """One question of the bank.

    Attributes:
        id: ``"<subject>-<nn>"``, stable across versions of the bank that keep the item.
        subject: one of :data:`SUBJECTS`.
        kind: ``"fact"`` or ``"inference"``.
        question: the question, ending with ``"?"``.
        answer: the correct option's text.
        distractors: the three wrong options' texts.
        context: the story an inference item is about (``""`` for facts).
    """

    id: str
    subject: str
    kind: str
    question: str
    answer: str
    distractors: tuple[str, str, str]
    context: str = ""

    @property
    def options(self) -> tuple[str, ...]:
        """The answer, then the distractors (unshuffled)."""
        return (self.answer, *self.distractors)


# --------------------------------------------------------------------------------------------
# facts

_CAPITALS: list[tuple[str, str, tuple[str, ...]]] = [
    ("France", "Paris", ("Lyon",)),
    ("Germany", "Berlin", ("Munich",)),
    ("Italy", "Rome", ("Milan",)),
    ("Spain", "Madrid", ("Barcelona",)),
    ("Portugal", "Lisbon", ("Porto",)),
    ("the United Kingdom", "London", ("Manchester",)),
    ("Ireland", "Dublin", ()),
    ("the Netherlands", "Amsterdam", ("Rotterdam",)),
    ("Belgium", "Brussels", ()),
    ("Austria", "Vienna", ()),
    ("Switzerland", "Bern", ("Zurich", "Geneva")),
    ("Poland", "Warsaw", ("Krakow",)),
    ("Greece", "Athens", ()),
    ("Sweden", "Stockholm", ()),
    ("Norway", "Oslo", ()),
    ("Finland", "Helsinki", ()),
    ("Denmark", "Copenhagen", ()),
    ("Russia", "Moscow", ("Saint Petersburg",)),
    ("Japan", "Tokyo", ("Osaka",)),
    ("China", "Beijing", ("Shanghai",)),
    ("South Korea", "Seoul", ("Busan",)),
    ("India", "New Delhi", ("Mumbai",)),
    ("Thailand", "Bangkok", ()),
    ("Egypt", "Cairo", ("Alexandria",)),
    ("Kenya", "Nairobi", ()),
    ("Canada", "Ottawa", ("Toronto", "Vancouver")),
    ("Cuba", "Havana", ()),
    ("Argentina", "Buenos Aires", ()),
    ("Peru", "Lima", ()),
    ("Australia", "Canberra", ("Sydney", "Melbourne")),
    ("Turkey", "Ankara", ("Istanbul",)),
    ("Hungary", "Budapest", ()),
]

_COLOURS: list[tuple[str, str, tuple[str, ...]]] = [
    ("a ripe banana", "yellow", ("blue", "purple", "black")),
    ("fresh grass", "green", ("red", "blue", "pink")),
    ("fresh snow", "white", ("green", "red", "orange")),
    ("a lump of coal", "black", ("yellow", "pink", "green")),
    ("the sky on a clear sunny day", "blue", ("green", "brown", "orange")),
    ("a ripe tomato", "red", ("blue", "purple", "white")),
    ("a carrot", "orange", ("blue", "black", "white")),
    ("a lemon", "yellow", ("blue", "black", "pink")),
    ("milk", "white", ("green", "red", "blue")),
    ("a ripe strawberry", "red", ("blue", "white", "grey")),
    ("a frog", "green", ("pink", "white", "orange")),
    ("a crow", "black", ("yellow", "pink", "green")),
    ("a polar bear", "white", ("green", "purple", "orange")),
    ("chocolate", "brown", ("blue", "green", "white")),
    ("blood", "red", ("green", "blue", "yellow")),
    ("a fire engine", "red", ("purple", "brown", "grey")),
    ("a lime", "green", ("blue", "black", "purple")),
    ("an aubergine", "purple", ("yellow", "white", "orange")),
    ("a pumpkin", "orange", ("blue", "purple", "black")),
    ("a flamingo", "pink", ("green", "blue", "black")),
    ("the bark of a tree", "brown", ("blue", "pink", "white")),
    ("a cloud on a sunny day", "white", ("green", "red", "brown")),
    ("a pea", "green", ("blue", "pink", "white")),
    ("a canary", "yellow", ("blue", "black", "brown")),
    ("an elephant", "grey", ("green", "pink", "blue")),
    ("ketchup", "red", ("blue", "green", "white")),
    ("a leaf in summer", "green", ("blue", "white", "pink")),
    ("coffee without milk", "black", ("green", "pink", "yellow")),
    ("salt", "white", ("green", "blue", "red")),
    ("a cherry", "red", ("blue", "white", "green")),
    ("the yolk of an egg", "yellow", ("blue", "green", "black")),
    ("a raven", "black", ("white", "yellow", "pink")),
]

# (animal, the sound it makes): every animal and every sound appears once, so a pool draw never
# gives a second right answer.
_SOUNDS: list[tuple[str, str]] = [
    ("dog", "woof"), ("cat", "meow"), ("cow", "moo"), ("sheep", "baa"), ("pig", "oink"),
    ("duck", "quack"), ("owl", "hoot"), ("snake", "hiss"), ("bee", "buzz"), ("frog", "croak"),
    ("mouse", "squeak"), ("donkey", "hee-haw"), ("lion", "roar"), ("horse", "neigh"),
    ("hen", "cluck"), ("crow", "caw"), ("dove", "coo"), ("wolf", "howl"), ("turkey", "gobble"),
    ("rooster", "cock-a-doodle-doo"),
]  # fmt: skip
# 16 items ask for the sound, 16 for the animal.
_SOUND_OF = ("dog", "cat", "cow", "sheep", "pig", "duck", "owl", "snake",
             "bee", "frog", "mouse", "donkey", "lion", "horse", "hen", "rooster")  # fmt: skip
_ANIMAL_OF = ("moo", "woof", "quack", "meow", "oink", "hiss", "buzz", "baa",
              "neigh", "roar", "hoot", "croak", "squeak", "caw", "coo", "howl")  # fmt: skip

# (word, its opposite); no word appears in two pairs, so pool draws are always wrong.
_OPPOSITES: list[tuple[str, str, tuple[str, ...]]] = [
    ("hot", "cold", ("warm",)),
    ("big", "small", ("large",)),
    ("up", "down", ()),
    ("happy", "sad", ("glad",)),
    ("fast", "slow", ("quick",)),
    ("day", "night", ()),
    ("open", "closed", ()),
    ("full", "empty", ()),
    ("wet", "dry", ()),
    ("hard", "soft", ()),
    ("early", "late", ()),
    ("tall", "short", ()),
    ("loud", "quiet", ("noisy",)),
    ("thick", "thin", ()),
    ("rich", "poor", ()),
    ("clean", "dirty", ("tidy",)),
    ("left", "right", ()),
    ("strong", "weak", ()),
    ("heavy", "light", ()),
    ("inside", "outside", ()),
    ("push", "pull", ()),
    ("win", "lose", ()),
    ("remember", "forget", ()),
    ("buy", "sell", ()),
    ("above", "below", ()),
    ("begin", "end", ("start",)),
    ("true", "false", ()),
    ("always", "never", ()),
    ("laugh", "cry", ()),
    ("sweet", "sour", ()),
    ("friend", "enemy", ()),
    ("north", "south", ()),
]

_NUMBERS: list[tuple[str, str, tuple[str, ...]]] = [
    ("How many legs does a spider have?", "8", ("6", "4", "10")),
    ("How many legs does a dog have?", "4", ("2", "6", "8")),
    ("How many legs does a bird have?", "2", ("4", "6", "3")),
    ("How many legs does an insect have?", "6", ("8", "4", "10")),
    ("How many days are there in a week?", "7", ("5", "6", "10")),
    ("How many months are there in a year?", "12", ("10", "11", "13")),
    ("How many hours are there in a day?", "24", ("12", "20", "60")),
    ("How many minutes are there in an hour?", "60", ("100", "30", "24")),
    ("How many seconds are there in a minute?", "60", ("100", "30", "10")),
    ("How many sides does a triangle have?", "3", ("4", "5", "6")),
    ("How many sides does a square have?", "4", ("3", "5", "8")),
    ("How many sides does a hexagon have?", "6", ("5", "8", "7")),
    ("How many sides does an octagon have?", "8", ("6", "10", "7")),
    ("How many wheels does a bicycle have?", "2", ("3", "4", "1")),
    ("How many wheels does a tricycle have?", "3", ("2", "4", "5")),
    ("How many wheels does a car usually have?", "4", ("2", "3", "6")),
    ("How many fingers are there on one hand?", "5", ("4", "6", "10")),
    ("How many cents are there in a dollar?", "100", ("10", "50", "1000")),
    ("How many centimetres are there in a metre?", "100", ("10", "1000", "12")),
    ("How many grams are there in a kilogram?", "1000", ("100", "10", "500")),
    ("How many eggs are there in a dozen?", "12", ("10", "6", "20")),
    ("How many letters are there in the English alphabet?", "26", ("24", "28", "30")),
    ("How many continents are there on Earth?", "7", ("5", "6", "9")),
    ("How many planets are there in our solar system?", "8", ("7", "9", "12")),
    ("How many days are there in the month of April?", "30", ("31", "28", "29")),
    ("How many years are there in a century?", "100", ("10", "50", "1000")),
    ("How many years are there in a decade?", "10", ("100", "5", "12")),
    ("How many strings does a standard guitar have?", "6", ("4", "5", "8")),
    ("How many arms does an octopus have?", "8", ("6", "10", "4")),
    ("How many colours are there in a rainbow?", "7", ("5", "6", "9")),
    ("How many weeks are there in a year?", "52", ("48", "50", "12")),
    ("How many seasons are there in a year?", "4", ("3", "2", "6")),
]

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip
# Calendar items: 7 days after, 7 days before, 9 months after, 9 months before.
_MONTHS_AFTER = ("January", "February", "March", "April", "June", "August", "September", "October", "November")
_MONTHS_BEFORE = ("February", "March", "May", "June", "July", "August", "October", "November", "December")

# Categories whose members belong to no other category of the table (two questions each).
_CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    # name in the question: (article + category, members)
    "fruit": ("a fruit", ("apple", "pear", "banana", "cherry")),
    "vegetable": ("a vegetable", ("carrot", "potato", "cabbage", "onion")),
    "vehicle": ("a vehicle", ("bus", "truck", "car", "train")),
    "instrument": ("a musical instrument", ("violin", "piano", "trumpet", "drum")),
    "furniture": ("a piece of furniture", ("sofa", "wardrobe", "table", "bed")),
    "clothing": ("a piece of clothing", ("jacket", "sock", "shirt", "skirt")),
    "bird": ("a bird", ("eagle", "sparrow", "parrot", "swan")),
    "fish": ("a fish", ("salmon", "trout", "tuna", "cod")),
    "insect": ("an insect", ("ant", "beetle", "butterfly", "wasp")),
    "tool": ("a tool", ("hammer", "saw", "screwdriver", "spanner")),
    "drink": ("a drink", ("tea", "juice", "lemonade", "coffee")),
    "sport": ("a sport", ("tennis", "football", "swimming", "golf")),
    "body": ("a part of the body", ("elbow", "knee", "shoulder", "ankle")),
    "metal": ("a metal", ("iron", "copper", "silver", "gold")),
    "flower": ("a flower", ("rose", "tulip", "daisy", "lily")),
    "mammal": ("a mammal", ("horse", "tiger", "rabbit", "whale")),
}

_NATURE: list[tuple[str, str, tuple[str, ...]]] = [
    ("What do bees make?", "honey", ("milk", "silk", "wool")),
    ("What do cows give us to drink?", "milk", ("honey", "juice", "tea")),
    ("What do hens lay?", "eggs", ("seeds", "stones", "nuts")),
    ("In which direction does the sun rise?", "east", ("west", "north", "south")),
    ("What does water turn into when it freezes?", "ice", ("steam", "sand", "smoke")),
    ("What do plants need from the sun to grow?", "light", ("sound", "salt", "sugar")),
    ("What gas do people need to breathe in to live?", "oxygen", ("helium", "smoke", "steam")),
    ("What do fish use to breathe under water?", "gills", ("lungs", "fins", "scales")),
    ("Which is the largest ocean on Earth?", "the Pacific Ocean", ("the Indian Ocean", "the Arctic Ocean", "the Atlantic Ocean")),
    ("Which animal has the longest neck?", "the giraffe", ("the horse", "the pig", "the rabbit")),
    ("What is a baby cat called?", "a kitten", ("a puppy", "a calf", "a foal")),
    ("What is a baby dog called?", "a puppy", ("a kitten", "a lamb", "a chick")),
    ("What is a baby sheep called?", "a lamb", ("a puppy", "a calf", "a cub")),
    ("What is a young frog called before it grows legs?", "a tadpole", ("a kitten", "a lamb", "a foal")),
    ("On which continent do most penguins live?", "Antarctica", ("Europe", "Asia", "North America")),
    ("Which planet do we live on?", "Earth", ("Mars", "Venus", "Jupiter")),
    ("What is the star at the centre of our solar system?", "the Sun", ("the Moon", "Mars", "a comet")),
    ("What does a caterpillar turn into?", "a butterfly", ("a spider", "a bird", "a snail")),
    ("What do spiders spin to catch insects?", "webs", ("nests", "shells", "hives")),
    ("Which body part do we use to hear?", "ears", ("eyes", "knees", "teeth")),
    ("Which body part do we use to see?", "eyes", ("ears", "elbows", "toes")),
    ("Which body part pumps blood around the body?", "the heart", ("the stomach", "the lungs", "the skin")),
    ("What instrument measures temperature?", "a thermometer", ("a compass", "a ruler", "a clock")),
    ("What do we use to find north?", "a compass", ("a thermometer", "a spoon", "a kettle")),
    ("What covers the body of a bird?", "feathers", ("scales", "fur", "shells")),
    ("What covers the body of a fish?", "scales", ("feathers", "fur", "wool")),
    ("What do we get from sheep to make warm clothes?", "wool", ("silk", "leather", "honey")),
    ("What is bread mostly made from?", "flour", ("sugar", "rice", "milk")),
    ("What is cheese made from?", "milk", ("flour", "eggs", "apples")),
    ("What does the Moon travel around?", "the Earth", ("Mars", "the stars", "Jupiter")),
    ("What falls from clouds when it rains?", "water", ("sand", "salt", "smoke")),
    ("Which season comes after winter?", "spring", ("autumn", "summer", "night")),
]

# --------------------------------------------------------------------------------------------
# inference over a short story (the answer word is never in the story)

_FEELINGS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("Mia", "Mia's little dog ran away in the park, and she could not find it anywhere.", "sad", ("happy", "proud", "excited")),
    ("Tom", "Tom opened a big box on his birthday and found the bicycle he had wanted all year.", "happy", ("sad", "angry", "bored")),
    ("Ella", "Late at night, Ella heard a strange noise under her bed and pulled the blanket over her head.", "scared", ("happy", "proud", "bored")),
    ("Leo", "Leo worked hard all term, and his teacher gave him the prize for the best drawing in class.", "proud", ("sad", "scared", "angry")),
    ("Sam", "Sam had not eaten anything since breakfast, and now it was evening.", "hungry", ("full", "proud", "angry")),
    ("Nina", "Nina ran all the way up the hill and back down again three times.", "tired", ("bored", "hungry", "scared")),
    ("Ben", "Ben's little brother broke his favourite toy car on purpose.", "angry", ("happy", "proud", "calm")),
    ("Ruby", "Ruby's friends jumped out from behind the sofa and shouted her name when she came home.", "surprised", ("bored", "sad", "tired")),
    ("Max", "Max sat alone in the waiting room for two hours with nothing to do and nothing to read.", "bored", ("excited", "scared", "proud")),
    ("Lucy", "Lucy moved to a new town, and nobody at her new school talked to her for a week.", "lonely", ("proud", "excited", "angry")),
    ("Jack", "Jack dropped his ice cream on the ground after only one lick.", "sad", ("happy", "proud", "excited")),
    ("Anna", "Anna's grandmother, whom she had not seen for a year, came to visit her.", "happy", ("angry", "scared", "bored")),
    ("Oscar", "A big dog growled and ran towards Oscar as he walked past the gate.", "scared", ("bored", "proud", "happy")),
    ("Lily", "Lily finished the puzzle with a thousand pieces all by herself.", "proud", ("sad", "scared", "bored")),
    ("Finn", "Finn had been walking in the hot sun for hours, and his bottle was empty.", "thirsty", ("cold", "bored", "proud")),
    ("Zoe", "Zoe stayed up very late, and now her eyes kept closing during the film.", "sleepy", ("angry", "excited", "hungry")),
    ("Noah", "Someone took Noah's seat while he went to get a drink, and they would not give it back.", "angry", ("happy", "proud", "sleepy")),
    ("Ivy", "Ivy found a letter from her best friend, who lives far away, in the post box.", "happy", ("sad", "angry", "scared")),
    ("Adam", "Tomorrow Adam will go to the sea for the first time, and he cannot stop jumping around.", "excited", ("bored", "sad", "tired")),
    ("Emma", "Emma lost the race by one step after practising every day for a month.", "disappointed", ("proud", "happy", "bored")),
    ("Kate", "Kate forgot her coat, and the wind blew snow into her face on the way home.", "cold", ("hot", "hungry", "proud")),
    ("Omar", "Omar broke his mother's favourite vase and hid the pieces under the sofa.", "guilty", ("proud", "happy", "bored")),
    ("Mila", "Mila had to sing alone in front of the whole school, and her hands were shaking.", "nervous", ("bored", "sleepy", "angry")),
    ("Hugo", "Hugo's best friend moved to another country, and Hugo would not see him again for years.", "sad", ("happy", "excited", "proud")),
    ("Grace", "Grace opened the door and saw a puppy with a red bow, a present for her.", "happy", ("sad", "angry", "lonely")),
    ("Theo", "The lights went out in the old house, and Theo heard slow footsteps in the dark hall.", "scared", ("happy", "bored", "proud")),
    ("Alice", "Alice ate three plates of pasta and two bowls of pudding at the party.", "full", ("hungry", "thirsty", "cold")),
    ("Luke", "Luke waited an hour for his friend at the cinema, but his friend never came.", "annoyed", ("proud", "excited", "sleepy")),
    ("Sara", "Sara won first prize in the spelling contest in front of her whole family.", "proud", ("sad", "scared", "lonely")),
    ("Dan", "Dan found out that the trip to the zoo he had waited for was cancelled because of rain.", "disappointed", ("excited", "proud", "happy")),
    ("Rosa", "Rosa was told she could pick any cake in the shop, and there were fifty kinds.", "excited", ("sad", "bored", "angry")),
    ("Eli", "Eli carried heavy boxes up the stairs all afternoon and lay down on the floor.", "tired", ("excited", "hungry", "scared")),
]

_NEXT_EVENTS: list[tuple[str, str, str, tuple[str, str, str]]] = [
    ("Ben left his ice cream on a bench in the hot sun for an hour.", "What happened to the ice cream?",
     "It melted.", ("It froze.", "It grew bigger.", "It turned blue.")),
    ("Mia let go of the string of her balloon in the open field.", "What happened to the balloon?",
     "It flew away.", ("It sank.", "It got heavier.", "It turned into a kite.")),
    ("Tom dropped a glass onto the hard stone floor.", "What most likely happened to the glass?",
     "It broke.", ("It bounced up high.", "It grew.", "It started to sing.")),
    ("Ella forgot to water the plant on her window for a whole month.", "What most likely happened to the plant?",
     "It dried up.", ("It grew very tall.", "It turned into a tree.", "It walked away.")),
    ("Leo put a pot of water on the stove and turned the heat up high.", "What happened to the water after a while?",
     "It boiled.", ("It froze.", "It turned green.", "It became sand.")),
    ("Nina left a bowl of water outside on a very cold winter night.", "What was in the bowl in the morning?",
     "ice", ("hot tea", "sand", "milk")),
    ("Sam threw a stone into the middle of the lake.", "What happened to the stone?",
     "It sank.", ("It floated.", "It flew away.", "It melted.")),
    ("Ruby did not put on her coat and went out into the heavy rain.", "What happened to her clothes?",
     "They got wet.", ("They stayed dry.", "They got warmer.", "They turned red.")),
    ("Max planted a seed in good soil and watered it every day for weeks.", "What most likely happened?",
     "A plant grew.", ("The seed became a stone.", "The soil froze.", "Nothing ever changed.")),
    ("Lucy stood on a chair to reach the top shelf, and the chair began to wobble.", "What could happen next?",
     "She could fall.", ("She could fly.", "She could shrink.", "She could fall asleep.")),
    ("Jack kicked the ball very hard towards the window.", "What most likely happened to the window?",
     "It broke.", ("It melted.", "It grew.", "It sang.")),
    ("Anna put bread in the toaster and forgot about it for a long time.", "What happened to the bread?",
     "It burned.", ("It froze.", "It became a cake.", "It got wet.")),
    ("Oscar was very tired, so he lay down in his warm bed and closed his eyes.", "What happened next?",
     "He fell asleep.", ("He ran a race.", "He ate lunch.", "He went swimming.")),
    ("Lily blew hard on the candles of her birthday cake.", "What happened to the candles?",
     "They went out.", ("They grew taller.", "They turned into flowers.", "They burned brighter.")),
    ("Finn poked the soap bubble with his finger.", "What happened to the bubble?",
     "It popped.", ("It grew bigger.", "It turned to stone.", "It sank.")),
    ("Zoe left the door of the bird's cage open, and the bird saw the open window.", "What did the bird most likely do?",
     "It flew out.", ("It learned to read.", "It turned into a cat.", "It froze.")),
    ("Noah built a snowman, and then the weather stayed warm and sunny for a week.", "What happened to the snowman?",
     "It melted.", ("It grew.", "It walked away.", "It got colder.")),
    ("Ivy did not study at all for her test and did not know any of the answers.", "What most likely happened?",
     "She got a low mark.", ("She got the top mark.", "The test was cancelled.", "She became the teacher.")),
    ("Adam poured too much water into his cup, and he kept on pouring.", "What happened?",
     "The water spilled.", ("The cup grew.", "The water froze.", "The cup flew away.")),
    ("Emma's phone battery was almost empty, and she used it all day without charging it.", "What happened to the phone?",
     "It turned off.", ("It charged itself.", "It became a book.", "It grew bigger.")),
    ("Kate's cat saw a mouse run across the kitchen floor.", "What did the cat most likely do?",
     "It chased the mouse.", ("It read a book.", "It baked a cake.", "It sang a song.")),
    ("Omar dropped an egg from his hand onto the kitchen floor.", "What happened to the egg?",
     "It cracked.", ("It bounced.", "It hatched a dragon.", "It flew away.")),
    ("Mila forgot her umbrella, and dark clouds covered the whole sky.", "What most likely happened soon?",
     "It started to rain.", ("The sun got hotter.", "It snowed sugar.", "The clouds turned green.")),
    ("Hugo did not brush his teeth and ate sweets every day for a year.", "What most likely happened to his teeth?",
     "They got holes.", ("They got stronger.", "They turned gold.", "They grew longer.")),
    ("Grace rode her bike over a sharp nail in the road.", "What most likely happened to the tyre?",
     "It went flat.", ("It grew.", "It turned red.", "It got harder.")),
    ("Theo's dog was waiting at the door when Theo came home from school.", "What did the dog most likely do?",
     "It wagged its tail.", ("It drove a car.", "It did homework.", "It cooked dinner.")),
    ("Alice pressed the switch on the wall in the dark room.", "What happened?",
     "The light came on.", ("The room got darker.", "The door fell off.", "The wall moved.")),
    ("Luke left the milk out of the fridge on a hot day for a week.", "What happened to the milk?",
     "It went sour.", ("It got colder.", "It turned into juice.", "It became sweeter.")),
    ("Sara put a heavy book on top of a paper cup.", "What happened to the cup?",
     "It was crushed.", ("It grew.", "It flew.", "It got taller.")),
    ("Dan put his wet socks next to the warm fire.", "What happened to the socks after a while?",
     "They got dry.", ("They got wetter.", "They froze.", "They turned into shoes.")),
    ("Rosa's baby brother was hungry and started to cry, so she gave him his bottle of milk.", "What did the baby most likely do?",
     "He drank the milk.", ("He read a book.", "He drove away.", "He built a house.")),
    ("Eli shook the tree, and the ripe apples hung loosely on the branches.", "What happened to the apples?",
     "They fell down.", ("They flew up.", "They turned to stone.", "They grew bigger.")),
]

_OBJECTS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("Lily wanted to cut a sheet of paper in half.", "What did Lily need?", "scissors", ("a spoon", "a pillow", "a sock")),
    ("Tom wanted to write a letter to his grandmother.", "What did Tom need?", "a pen", ("a fork", "a shoe", "a plate")),
    ("Mia wanted to eat her soup.", "What did Mia need?", "a spoon", ("a hammer", "a comb", "a brush")),
    ("Ben wanted to dig a hole in the garden to plant a tree.", "What did Ben need?", "a spade", ("a cup", "a towel", "a candle")),
    ("It started to rain, and Ella did not want to get wet on her walk.", "What did Ella need?", "an umbrella", ("a fork", "a ball", "a pillow")),
    ("Leo wanted to knock a nail into the wall.", "What did Leo need?", "a hammer", ("a spoon", "a sock", "a feather")),
    ("Nina wanted to see in the dark cellar.", "What did Nina need?", "a torch", ("a sponge", "a fork", "a pillow")),
    ("Sam wanted to dry himself after his shower.", "What did Sam need?", "a towel", ("a ladder", "a candle", "a key")),
    ("Ruby wanted to open the locked front door.", "What did Ruby need?", "a key", ("a spoon", "a sock", "a plate")),
    ("Max wanted to brush his teeth before bed.", "What did Max need?", "a toothbrush", ("a hammer", "a kite", "a fork")),
    ("Lucy wanted to reach the apples at the top of the tall tree.", "What did Lucy need?", "a ladder", ("a spoon", "a towel", "a sock")),
    ("Jack wanted to know what time it was.", "What did Jack look at?", "a clock", ("a spoon", "a sock", "a carrot")),
    ("Anna wanted to fix the tear in her shirt.", "What did Anna need?", "a needle and thread", ("a hammer and nails", "a cup and saucer", "a bat and ball")),
    ("Oscar wanted to sweep the dust off the kitchen floor.", "What did Oscar need?", "a broom", ("a pencil", "a spoon", "a pillow")),
    ("Finn wanted to take a picture of the sunset.", "What did Finn need?", "a camera", ("a broom", "a fork", "a blanket")),
    ("Zoe wanted to keep warm in bed on a cold night.", "What did Zoe need?", "a blanket", ("a fork", "a ruler", "a key")),
    ("Noah wanted to draw a straight line on his paper.", "What did Noah need?", "a ruler", ("a pillow", "a cup", "a sock")),
    ("Ivy wanted to tidy her long tangled hair after washing it.", "What did Ivy need?", "a comb", ("a hammer", "a spade", "a kettle")),
    ("Adam wanted to make a cup of hot tea.", "What did Adam need?", "a kettle", ("a ruler", "a sock", "a spade")),
    ("Emma wanted to look at the tiny cells of a leaf.", "What did Emma need?", "a microscope", ("a spoon", "a pillow", "a broom")),
    ("Kate wanted to fly her new toy high in the windy sky.", "What did Kate need?", "a kite", ("a spoon", "a kettle", "a towel")),
    ("Omar wanted to cut the bread for breakfast.", "What did Omar need?", "a knife", ("a pillow", "a sock", "a comb")),
    ("Mila wanted to see the stars and planets more clearly.", "What did Mila need?", "a telescope", ("a spoon", "a broom", "a sock")),
    ("Hugo wanted to carry his books to school.", "What did Hugo need?", "a bag", ("a kettle", "a ladder", "a spade")),
    ("Grace wanted to rub out a mistake in her drawing.", "What did Grace need?", "a rubber", ("a fork", "a towel", "a kettle")),
    ("Theo wanted to tie the two ends of the parcel together.", "What did Theo need?", "string", ("water", "sand", "bread")),
    ("Alice wanted to look at herself before going out.", "What did Alice need?", "a mirror", ("a spade", "a kettle", "a ball")),
    ("Luke wanted to paint the fence green.", "What did Luke need?", "a paintbrush", ("a spoon", "a pillow", "a clock")),
    ("Sara wanted to call her friend who lives in another city.", "What did Sara need?", "a phone", ("a broom", "a spade", "a comb")),
    ("Dan wanted to cross the river, and there was no bridge.", "What did Dan need?", "a boat", ("a spoon", "a pillow", "a comb")),
    ("Rosa wanted to hit the tennis ball over the net.", "What did Rosa need?", "a racket", ("a pillow", "a kettle", "a spoon")),
    ("Eli wanted to put out the small fire in the kitchen bin.", "What did Eli need?", "water", ("paper", "oil", "wood")),
]

# --------------------------------------------------------------------------------------------
# few-shot demonstrations (never among the questions)

SHOTS: tuple[FactItem, ...] = (
    FactItem("shot-1", "demo", "fact", "What colour is a ripe orange?", "orange", ("blue", "black", "white")),
    FactItem("shot-2", "demo", "fact", 'What is the opposite of "young"?', "old", ("tiny", "green", "fast")),
    FactItem("shot-3", "demo", "inference", "How did Pia most likely feel?", "happy", ("sad", "angry", "scared"),
             "Pia's class went to the fair, and she won a big toy bear."),  # fmt: skip
    FactItem("shot-4", "demo", "fact", "How many legs does a cat have?", "4", ("2", "6", "8")),
    FactItem("shot-5", "demo", "fact", "What is the capital of Slovenia?", "Ljubljana", ("Zagreb", "Sofia", "Riga")),
    FactItem("shot-6", "demo", "inference", "What did Kim need?", "a bucket", ("a book", "a fork", "a shoe"),
             "Kim wanted to carry water from the well to the garden."),  # fmt: skip
    FactItem("shot-7", "demo", "fact", "Which month comes after December?", "January", ("November", "February", "June")),
    FactItem("shot-8", "demo", "fact", "What is 1 plus 1?", "2", ("3", "1", "4")),
)
"""Demonstrations for few-shot prompts, in the order they are used."""

SUBJECTS: tuple[str, ...] = (
    "capitals", "colours", "animal_sounds", "opposites", "arithmetic", "numbers",
    "calendar", "categories", "nature", "feelings", "next_event", "objects",
)  # fmt: skip
SUBJECT_KIND: dict[str, str] = {s: "inference" if s in ("feelings", "next_event", "objects") else "fact" for s in SUBJECTS}

POOLS: dict[str, tuple[str, ...]] = {
    "capitals": tuple(c for _, c, _ in _CAPITALS),
    "animal_sounds": tuple(s for _, s in _SOUNDS) + tuple(a for a, _ in _SOUNDS),
    "opposites": tuple(w for pair in _OPPOSITES for w in pair[:2]),
    "calendar": _DAYS + _MONTHS,
}
"""The pools that fill up items given fewer than three distractors (animal sounds draw sounds for
a sound and animals, with their article, for an animal; calendar items draw days for a day and
months for a month)."""


def _draw(pool: Sequence[str], exclude: set[str], k: int, key: str) -> list[str]:
    """``k`` distinct pool entries not in ``exclude``, in a fixed pseudo-random order for ``key``.

    Uses only ``Random.random()`` (its sequence is stable across Python versions).
    """
    rng = random.Random(f"elens-facts/{key}")
    left = [x for x in pool if x not in exclude]
    out = []
    for _ in range(k):
        j = min(int(rng.random() * len(left)), len(left) - 1)
        out.append(left.pop(j))
    return out


def _fill(given: Sequence[str], answer: str, pool: Sequence[str], key: str, forbidden: Sequence[str] = ()) -> tuple[str, str, str]:
    chosen = list(given)
    chosen += _draw(pool, {answer, *chosen, *forbidden}, 3 - len(chosen), key)
    return tuple(chosen)  # type: ignore[return-value]


def _a(noun: str) -> str:
    """``noun`` with its indefinite article."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _arithmetic() -> list[tuple[str, str, tuple[str, ...]]]:
    """32 sums, differences and products of small numbers (fixed, not drawn per seed).

    The operands come from a generator seeded once for the bank. Distractors: off by one, off by
    two, and the result of the wrong operation where it differs.
    """
    rng = random.Random("elens-facts/arithmetic")

    def num(lo: int, hi: int) -> int:
        return lo + min(int(rng.random() * (hi - lo + 1)), hi - lo)

    items: list[tuple[str, str, tuple[str, ...]]] = []
    seen: set[str] = set()
    i = 0
    while len(items) < 32:
        op = ("plus", "minus", "times", "plus")[i % 4]
        if op == "plus":
            a, b = (num(2, 9), num(2, 9)) if i % 8 < 4 else (num(11, 40), num(2, 9))
            value, wrong_op = a + b, a * b if i % 8 < 4 else a - b
        elif op == "minus":
            a = num(6, 20)
            b = num(2, a - 2)
            value, wrong_op = a - b, a + b
        else:
            a, b = num(2, 9), num(2, 9)
            value, wrong_op = a * b, a + b
        wrong = []
        for w in (wrong_op, value + 1, value - 1, value + 2, value - 2, value + 10):
            if w != value and w > 0 and w not in wrong:
                wrong.append(w)
        question = f"What is {a} {op} {b}?"
        if question not in seen:  # a repeat draws again, in the same slot of the op cycle
            seen.add(question)
            items.append((question, str(value), tuple(str(w) for w in wrong[:3])))
            i += 1
    return items


@lru_cache(maxsize=1)
def fact_bank() -> tuple[FactItem, ...]:
    """Every item of the bank, subject by subject in :data:`SUBJECTS` order, 32 per subject."""
    items: list[FactItem] = []

    def add(subject: str, question: str, answer: str, distractors: tuple[str, str, str], context: str = "") -> None:
        n = sum(1 for it in items if it.subject == subject)
        items.append(FactItem(f"{subject}-{n:02d}", subject, SUBJECT_KIND[subject], question, answer, distractors, context))

    for country, capital, given in _CAPITALS:
        add("capitals", f"What is the capital of {country}?", capital,
            _fill(given, capital, POOLS["capitals"], f"capitals/{country}"))  # fmt: skip
    for thing, colour, given in _COLOURS:
        add("colours", f"What colour is {thing}?", colour, tuple(given))  # type: ignore[arg-type]
    sound = dict(_SOUNDS)
    animal = {s: a for a, s in _SOUNDS}
    for a in _SOUND_OF:
        add("animal_sounds", f"What sound does {_a(a)} make?", sound[a],
            _fill((), sound[a], [s for _, s in _SOUNDS], f"sound/{a}"))  # fmt: skip
    for s in _ANIMAL_OF:
        right = _a(animal[s])
        add("animal_sounds", f'Which animal says "{s}"?', right,
            _fill((), right, [_a(x) for x, _ in _SOUNDS], f"animal/{s}"))  # fmt: skip
    for word, opposite, given in _OPPOSITES:
        add("opposites", f'What is the opposite of "{word}"?', opposite,
            _fill(given, opposite, POOLS["opposites"], f"opposite/{word}", forbidden=(word,)))  # fmt: skip
    for question, answer, given in _arithmetic():
        add("arithmetic", question, answer, given)  # type: ignore[arg-type]
    for question, answer, given in _NUMBERS:
        add("numbers", question, answer, given)  # type: ignore[arg-type]
    for i, day in enumerate(_DAYS):
        nxt, prev = _DAYS[(i + 1) % 7], _DAYS[i - 1]
        add("calendar", f"Which day comes after {day}?", nxt, _fill((prev,), nxt, _DAYS, f"day-after/{day}", forbidden=(day,)))
    for i, day in enumerate(_DAYS):
        nxt, prev = _DAYS[(i + 1) % 7], _DAYS[i - 1]
        add("calendar", f"Which day comes before {day}?", prev, _fill((nxt,), prev, _DAYS, f"day-before/{day}", forbidden=(day,)))
    for month in _MONTHS_AFTER:
        i = _MONTHS.index(month)
        nxt, prev = _MONTHS[(i + 1) % 12], _MONTHS[i - 1]
        add("calendar", f"Which month comes after {month}?", nxt,
            _fill((prev,), nxt, _MONTHS, f"month-after/{month}", forbidden=(month,)))  # fmt: skip
    for month in _MONTHS_BEFORE:
        i = _MONTHS.index(month)
        nxt, prev = _MONTHS[(i + 1) % 12], _MONTHS[i - 1]
        add("calendar", f"Which month comes before {month}?", prev,
            _fill((nxt,), prev, _MONTHS, f"month-before/{month}", forbidden=(month,)))  # fmt: skip
    names = list(_CATEGORIES)
    for j in range(2):
        for cat in names:
            label, members = _CATEGORIES[cat]
            right = members[j]
            # three members of three other categories, drawn for this item
            others = _draw([c for c in names if c != cat], set(), 3, f"category/{cat}/{j}")
            wrong = tuple(_CATEGORIES[o][1][(j + 2) % 4] for o in others)
            add("categories", f"Which of these is {label}?", right, wrong)  # type: ignore[arg-type]
    for question, answer, given in _NATURE:
        add("nature", question, answer, given)  # type: ignore[arg-type]
    for name, story, answer, given in _FEELINGS:
        add("feelings", f"How did {name} most likely feel?", answer, tuple(given), story)  # type: ignore[arg-type]
    for story, question, answer, given in _NEXT_EVENTS:
        add("next_event", question, answer, given, story)
    for story, question, answer, given in _OBJECTS:
        add("objects", question, answer, tuple(given), story)  # type: ignore[arg-type]
    return tuple(items)
