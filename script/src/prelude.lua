-- corekv's Lua prelude: runs once per Lua state, before the globals are protected.
-- Chunk name "=corekv": the error handler skips these frames when it looks for the user's
-- line, as Redis skips its C functions.
local real = ...
local dbg = debug
local error, type, tostring, setmetatable, xpcall = error, type, tostring, setmetatable, xpcall

-- Redis 7.0's __redis__err__handler: string errors become {err='ERR ...'}, and the
-- position of the user's code that failed is added.
local function handler(err)
  local level = 2
  local i = dbg.getinfo(level, 'nSl')
  while i and (i.what == 'C' or i.what == 'tail' or i.source == '=corekv') do
    level = level + 1
    i = dbg.getinfo(level, 'nSl')
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end

local function run(f, a, b)
  return xpcall(function() return f(a, b) end, handler)
end

local function readonly()
  error('Attempt to modify a readonly table', 2)
end

local function protect(t)
  return setmetatable({}, {__index = t, __newindex = readonly, __metatable = false})
end

local function nonexistent(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end

-- Redis 7.0's pcall: an error table (from redis.call...) is caught as its message.
local raw_pcall = pcall
local function caught(ok, ...)
  if ok then
    return ok, ...
  end
  local e = ...
  if type(e) == 'table' and type(e.err) == 'string' then
    e = e.err
  end
  return false, e
end
real.pcall = function(...)
  return caught(raw_pcall(...))
end

-- What Redis leaves out of its Lua environment.
for _, name in ipairs({'print', 'dofile', 'loadfile', 'setfenv', 'getfenv', 'module',
                       'require', 'newproxy', 'debug', 'os', 'io', 'package'}) do
  real[name] = nil
end

-- The globals scripts see: a read-only proxy whose __index can be swapped for the library
-- API while FUNCTION LOAD runs a library's code.
local globals_meta = {__index = real, __newindex = readonly, __metatable = false}
local globals = setmetatable({}, globals_meta)

local function protect_globals()
  for name, value in pairs(real) do
    if type(value) == 'table' and name ~= '_G' then
      real[name] = protect(value)
    end
  end
  real._G = globals
  setmetatable(real, {__index = nonexistent})
end

local function set_index(t)
  globals_meta.__index = t
end

local function library_api(redis)
  setmetatable(redis, {__index = nonexistent})
  return protect(setmetatable({redis = protect(redis)}, {__index = nonexistent}))
end

return {
  run = run,
  protect_globals = protect_globals,
  globals = globals,
  set_index = set_index,
  library_api = library_api,
}
