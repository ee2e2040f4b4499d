"""What `dramatiq automation.worker` imports: the actors of `automation.processes.worker`.

Importing it sets the broker, as Dramatiq's CLI requires; the Procfile and the README name this path.
"""

from automation.processes.worker import deliver, deliver_batch, deliver_transactional

__all__ = ["deliver", "deliver_batch", "deliver_transactional"]
