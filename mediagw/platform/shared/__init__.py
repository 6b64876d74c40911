"""What several gateway nodes share through Redis (``-redisUrl``): the client (``redis``), the
request limits (``limiter.RedisLimiter``) and the fan-out of cache invalidations
(``fanout.Invalidations``)."""
