-- Argo CD health check for pave's catalog kinds around Components (platform.pave.dev):
-- Group, User, System, Domain, API and Resource share it (their directories link
-- here), since their status has the same shape.
--
-- pave's catalog controller writes one condition, Ready: True when every reference
-- in the spec resolves (an owner not checked yet, before the namespace has its org,
-- is said in the message, not a failure), False (reason UnresolvedReference) naming
-- each reference that dangles. The first case that matches decides:
--   no status, or status or its Ready condition from an older generation
--       -> Progressing "waiting for pave to act on generation N"
--   Ready=True   -> Healthy, with its message ("all N references resolve")
--   Ready=False  -> Degraded, with its message (which references dangle, and why)
--   no Ready condition yet, or Ready=Unknown
--       -> Progressing
--
-- Argo CD runs this with gopher-lua's base, table and package libraries only (and
-- os.time, os.date): no string library, so only ==, .. and tostring on strings.

local kind = "entity"
if obj.kind ~= nil then
  kind = tostring(obj.kind)
end

local generation = nil
if type(obj.metadata) == "table" then
  generation = tonumber(obj.metadata.generation)
end

-- The condition of this type in status, or nil.
local function condition(status, wanted)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == wanted then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c.message ~= nil and c.message ~= "" then
    return tostring(c.message)
  end
  if c.reason ~= nil and c.reason ~= "" then
    return tostring(c.reason)
  end
  return fallback
end

local function waiting()
  if generation == nil then
    return "waiting for pave to act on this " .. kind
  end
  return "waiting for pave to act on generation " .. tostring(generation)
end

local function health()
  local status = obj.status
  if type(status) ~= "table" then
    return "Progressing", waiting()
  end
  local observed = tonumber(status.observedGeneration)
  if generation ~= nil and (observed == nil or observed < generation) then
    return "Progressing", waiting()
  end
  local ready = condition(status, "Ready")
  if ready == nil then
    return "Progressing", "waiting for pave to resolve the " .. kind .. "'s references"
  end
  local ready_generation = tonumber(ready.observedGeneration)
  if generation ~= nil and ready_generation ~= nil and ready_generation < generation then
    return "Progressing", waiting()
  end
  if ready.status == "True" then
    return "Healthy", text(ready, "every reference resolves")
  end
  if ready.status == "False" then
    return "Degraded", text(ready, "a reference does not resolve")
  end
  return "Progressing", text(ready, "readiness unknown")
end

local hs = {}
hs.status, hs.message = health()
return hs
