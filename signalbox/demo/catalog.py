"""The demo world's fixed cast: locations, plans, names, classes, texts. Data only, no logic.

Every contact value is reserved for fiction: e-mail at example.com / example.org and US phone
numbers 555-0100..555-0199 behind real area codes (each area code gives 100 numbers, so the
pool below gives 28,600 distinct numbers, enough that no two people ever share one).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    id: str
    name: str
    timezone: str
    area_code: str
    size: float  # relative share of members
    quality: float  # > 1 keeps members longer, < 1 leaks them (location health differs)


# Ordered so that any first three already span three time zones.
LOCATIONS: tuple[Location, ...] = (
    Location("loc-01", "Brooklyn Heights", "America/New_York", "718", 1.30, 1.05),
    Location("loc-02", "Chicago West Loop", "America/Chicago", "312", 1.15, 1.00),
    Location("loc-03", "Santa Monica", "America/Los_Angeles", "310", 1.05, 1.10),
    Location("loc-04", "Denver Highlands", "America/Denver", "303", 0.95, 0.80),
    Location("loc-05", "Scottsdale", "America/Phoenix", "480", 0.85, 0.95),
    Location("loc-06", "Boston Back Bay", "America/New_York", "617", 0.90, 1.00),
    Location("loc-07", "Austin South Congress", "America/Chicago", "512", 0.90, 0.90),
    Location("loc-08", "Seattle Capitol Hill", "America/Los_Angeles", "206", 0.85, 1.05),
    Location("loc-09", "Miami Brickell", "America/New_York", "305", 0.80, 0.85),
    Location("loc-10", "San Francisco Mission", "America/Los_Angeles", "415", 0.80, 1.00),
    Location("loc-11", "Minneapolis North Loop", "America/Chicago", "612", 0.70, 1.05),
    Location("loc-12", "Salt Lake City Sugar House", "America/Denver", "801", 0.65, 0.95),
)


@dataclass(frozen=True)
class Plan:
    name: str
    monthly_price: float
    class_factor: float  # how much class booking the plan invites


PLANS: tuple[Plan, ...] = (
    Plan("basic", 29.0, 0.55),
    Plan("standard", 49.0, 1.0),
    Plan("premium", 89.0, 1.5),
)

# Real US area codes; +1 <code> 555-01xx is a fictional number that still parses as valid.
_AREA_CODES_TEXT = """
201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 229 231 234 239 240
248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 303 304 305 307 308 309 310 312 313 314
315 316 317 318 319 320 321 323 325 330 334 336 337 339 347 351 352 360 361 385 386 401 402 404 405
406 407 408 409 410 412 413 414 415 417 419 423 424 425 430 432 434 435 440 442 443 469 470 475 478
479 480 484 501 502 503 504 505 507 508 509 510 512 513 515 516 517 518 520 530 540 541 559 561 562
563 567 570 571 573 574 575 580 585 586 601 602 603 605 606 607 608 609 610 612 614 615 616 617 618
619 620 623 626 628 630 631 636 641 646 650 651 657 660 661 662 678 681 682 701 702 703 704 706 707
708 712 713 714 715 716 717 718 719 720 724 727 731 732 734 737 740 747 754 757 760 762 763 765 769
770 772 773 774 775 779 781 785 786 801 802 803 804 805 806 808 810 812 813 814 815 816 817 818 828
830 831 832 843 845 847 848 850 856 857 858 859 860 862 863 864 865 870 872 878 901 903 904 906 907
908 909 910 912 913 914 915 916 917 918 919 920 925 928 929 931 936 937 938 940 941 947 949 951 952
954 956 970 971 972 973 978 979 980 985 989
"""
AREA_CODES: tuple[str, ...] = tuple(_AREA_CODES_TEXT.split())

_FIRST_NAMES_TEXT = """
Olivia Liam Emma Noah Ava Elijah Sophia James Isabella William Mia Benjamin Charlotte Lucas Amelia
Henry Harper Alexander Evelyn Mason Abigail Michael Emily Ethan Ella Daniel Elizabeth Jacob Camila
Logan Luna Jackson Sofia Levi Avery Sebastian Mila Mateo Aria Jack Scarlett Owen Penelope Theodore
Layla Aiden Chloe Samuel Victoria Joseph Madison John Eleanor David Grace Wyatt Nora Matthew Riley
Luke Zoey Asher Hannah Carter Hazel Julian Lily Grayson Ellie Leo Violet Jayden Lillian Gabriel Zoe
Isaac Stella Lincoln Aurora Anthony Natalie Hudson Emilia Dylan Everly Ezra Leah Thomas Aubrey
Charles Willow Christopher Addison Jaxon Lucy Maverick Audrey Josiah Bella Isaiah Nova Andrew
Brooklyn Elias Paisley Joshua Savannah Nathan Claire Caleb Skylar Ryan Isla Adrian Genesis Miles
Naomi Eli Elena Nolan Caroline Christian Eliana Aaron Anna Cameron Maya Ezekiel Valentina Colton
Ruby Luca Kennedy Landon Ivy Hunter Ariana Jonathan Aaliyah Santiago Cora Axel Madelyn Easton Alice
Cooper Kinsley Jeremiah Hailey Angel Gabriella Roman Allison Connor Gianna Jameson Serenity Robert
Samantha Greyson Sarah Jordan Quinn Ian Eva Carson Piper Jaxson Sophie Leonardo Sadie Nicholas
Delilah Dominic Josephine Austin Nevaeh Everett Adeline Brooks Arya Xavier Emery Kai Lydia Jose
Clara Parker Vivian
"""
FIRST_NAMES: tuple[str, ...] = tuple(_FIRST_NAMES_TEXT.split())

_LAST_NAMES_TEXT = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez
Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark
Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams
Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker
Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper
Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James
Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez
Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez
Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole
Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens
Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker
Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz
Hunt Hicks
"""
LAST_NAMES: tuple[str, ...] = tuple(_LAST_NAMES_TEXT.split())

# (name, local start time in minutes after midnight, which member slot it suits: 0 am, 1 midday, 2 pm)
CLASSES: tuple[tuple[str, int, int], ...] = (
    ("Sunrise HIIT", 6 * 60, 0),
    ("Spin 45", 6 * 60 + 45, 0),
    ("Strength Foundations", 7 * 60 + 30, 0),
    ("Lunchtime Spin", 12 * 60, 1),
    ("Core & Mobility", 12 * 60 + 15, 1),
    ("Pilates Mat", 9 * 60 + 30, 1),
    ("Evening HIIT", 17 * 60 + 30, 2),
    ("Power Yoga", 18 * 60 + 30, 2),
    ("Boxing Conditioning", 19 * 60, 2),
    ("Zumba", 19 * 60 + 45, 2),
)

CAMPAIGNS: tuple[str, ...] = (
    "weekly_schedule",
    "new_class_launch",
    "member_spotlight",
    "nutrition_tips",
    "bring_a_friend",
    "holiday_hours",
)

RETAIL_ITEMS: tuple[tuple[str, float], ...] = (
    ("protein_shake", 6.5),
    ("water_bottle", 18.0),
    ("towel_rental", 3.0),
    ("personal_training_session", 65.0),
    ("resistance_bands", 24.0),
    ("guest_pass", 15.0),
)

PAGES: tuple[str, ...] = ("pricing", "schedule", "cancellation")

CANCEL_REASONS: tuple[str, ...] = (
    "not_using",
    "too_expensive",
    "switching_gym",
    "schedule_change",
    "unhappy_with_service",
    "moving",
    "injury",
    "payment_failed",
)

TICKET_TOPICS: tuple[str, ...] = (
    "billing",
    "equipment",
    "cleanliness",
    "staff",
    "class_schedule",
    "app_login",
    "freeze_request",
)

LEAD_SOURCES: tuple[str, ...] = ("web_form", "instagram", "google_ads", "referral", "walk_in")

# Indexed by rating - 1.
REVIEW_TEXTS: tuple[tuple[str, ...], ...] = (
    (
        "Locker room was filthy and nobody at the desk cared.",
        "Charged me twice and took weeks to refund. Avoid.",
        "Twisted my ankle on a broken treadmill that had been reported for days.",
    ),
    (
        "Classes are always full and the app keeps double booking.",
        "Equipment is old and half the bikes are broken.",
    ),
    (
        "Decent gym, gets crowded after work.",
        "Good trainers but the front desk is hit or miss.",
    ),
    (
        "Great classes and friendly staff, parking is a pain.",
        "Clean, well equipped, good value.",
    ),
    (
        "Best gym I've belonged to. The coaches know everyone by name!",
        "Love the morning spin crew, changed my routine for good.",
        "Spotless, welcoming, and the classes actually push you.",
    ),
)

# Seasonal multipliers by month (index 0 = January): the January rush and the summer dip.
JOIN_SEASON: tuple[float, ...] = (2.1, 1.25, 1.1, 1.0, 0.95, 0.85, 0.75, 0.8, 1.1, 0.95, 0.85, 0.7)
VISIT_SEASON: tuple[float, ...] = (1.15, 1.06, 1.0, 1.0, 0.95, 0.87, 0.78, 0.8, 1.0, 1.0, 0.95, 0.85)
