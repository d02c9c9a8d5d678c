from django.db import migrations


def create_default_worker(apps, schema_editor):
    Worker = apps.get_model("carrot", "Worker")
    Worker.objects.using(schema_editor.connection.alias).get_or_create(
        name="default",
        defaults={"description": "Runs the tasks that name no worker."},
    )


class Migration(migrations.Migration):
    dependencies = [("carrot", "0001_initial")]

    operations = [
        migrations.RunPython(create_default_worker, migrations.RunPython.noop),
    ]
