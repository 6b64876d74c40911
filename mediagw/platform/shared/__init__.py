"""What several gateway nodes share through Redis (``-redisUrl``): the client, the request
limits (``RedisLimiter``) and the fan-out of cache invalidations (``Invalidations``)."""
