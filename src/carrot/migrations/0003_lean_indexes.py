import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("carrot", "0002_default_worker"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="task",
            name="carrot_task_worker_status",
        ),
        migrations.RemoveIndex(
            model_name="task",
            name="carrot_task_waiting",
        ),
        migrations.AlterField(
            model_name="task",
            name="status",
            field=models.CharField(
                choices=[
                    ("waiting", "Waiting"),
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed"),
                ],
                default="waiting",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="task",
            name="worker",
            field=models.ForeignKey(
                db_column="worker",
                db_index=False,
                default="default",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="tasks",
                to="carrot.worker",
                to_field="name",
            ),
        ),
        migrations.AddIndex(
            model_name="task",
            index=models.Index(
                condition=models.Q(("finished_at__isnull", True)),
                fields=["status", "worker"],
                name="carrot_task_unfinished",
            ),
        ),
        migrations.AddIndex(
            model_name="task",
            index=models.Index(
                condition=models.Q(("finished_at__isnull", True)),
                fields=["status", "published_at"],
                name="carrot_task_republish",
            ),
        ),
    ]
