from django.core.management.commands.migrate import Command as DjangoMigrate

from telemetry.db_roles import OWNER_DB


class Command(DjangoMigrate):
    help = (
        "Django's migrate, run as the schema owner (the 'owner' database, DATABASE_URL): the "
        "app's own role may not change the schema. Afterwards the app's roles and grants are "
        "brought up to date (telemetry/db_roles.py)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=OWNER_DB)
